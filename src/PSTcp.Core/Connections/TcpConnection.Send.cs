using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    public sealed partial class TcpConnection
    {
        // One sender at a time: handlers, broadcast and Send-TcpLine may share a connection.
        private readonly SemaphoreSlim _sendLock = new SemaphoreSlim(1, 1);
        private List<ArraySegment<byte>> _sendSegments;
        private volatile bool _sendShut;
        private long _bytesSent;

        /// <summary>Sends bytes as they are; completes when the socket took them all.</summary>
        public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
            SendAsync(new ReadOnlySequence<byte>(data), cancellationToken);

        /// <summary>Sends bytes as they are (one gathered send for several segments); completes when the socket took them all.</summary>
        public ValueTask SendAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken = default)
        {
            // Nobody else is sending: one non-blocking send on this thread, which on a plain
            // socket with room takes it all (a cmdlet's message, an echo) with no state machine,
            // no awaitable and no completion to wait for. What it leaves goes the usual way.
            if (data.IsSingleSegment && !data.IsEmpty && !cancellationToken.IsCancellationRequested && _sendLock.Wait(0)) return SendNow(data.First);
            return SendQueuedAsync(data, cancellationToken);
        }

        /// <summary>The non-blocking try, the send lock held (it releases it, or its rest does).</summary>
        private ValueTask SendNow(ReadOnlyMemory<byte> data)
        {
            int sent;
            try
            {
                ThrowIfCantSend();
                sent = _transport.TrySend(ToSegment(data));
            }
            catch (Exception e)
            {
                _sendLock.Release();
                var error = e is SocketException || e is ObjectDisposedException || e is System.IO.IOException ? Closed(e) : e;
                return new ValueTask(Task.FromException(error));
            }

            if (sent == data.Length)
            {
                Interlocked.Add(ref _bytesSent, sent);
                Diagnostics.PSTcpMetrics.BytesSent(this, sent);
                _sendLock.Release();
                return default;
            }

            return SendRestAsync(data, Math.Max(sent, 0));
        }

        /// <summary>The rest of a send the non-blocking try began (the send lock held).</summary>
        private async ValueTask SendRestAsync(ReadOnlyMemory<byte> data, int sent)
        {
            try
            {
                if (sent > 0)
                {
                    Interlocked.Add(ref _bytesSent, sent);
                    Diagnostics.PSTcpMetrics.BytesSent(this, sent);
                }

                ThrowIfCantSend();
                await _transport.SendAsync(ToSegment(data.Slice(sent))).ConfigureAwait(false);
                Interlocked.Add(ref _bytesSent, data.Length - sent);
                Diagnostics.PSTcpMetrics.BytesSent(this, data.Length - sent);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.IOException)
            {
                throw Closed(e);
            }
            finally
            {
                _sendLock.Release();
            }
        }

        private async ValueTask SendQueuedAsync(ReadOnlySequence<byte> data, CancellationToken cancellationToken)
        {
            if (data.IsEmpty) return;
            await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ThrowIfCantSend();
                if (data.IsSingleSegment)
                {
                    await _transport.SendAsync(ToSegment(data.First)).ConfigureAwait(false);
                }
                else
                {
                    var segments = _sendSegments ?? (_sendSegments = new List<ArraySegment<byte>>());
                    segments.Clear();
                    foreach (var memory in data)
                    {
                        segments.Add(ToSegment(memory));
                    }

                    await _transport.SendAsync(segments).ConfigureAwait(false);
                }

                Interlocked.Add(ref _bytesSent, data.Length);
                Diagnostics.PSTcpMetrics.BytesSent(this, data.Length);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.IOException)
            {
                throw Closed(e);
            }
            finally
            {
                _sendLock.Release();
            }
        }

        private static ArraySegment<byte> ToSegment(ReadOnlyMemory<byte> memory) =>
            MemoryMarshal.TryGetArray(memory, out var segment) ? segment : new ArraySegment<byte>(memory.ToArray());

        private void ThrowIfCantSend()
        {
            // A close in progress still lets the batch in hand send its answer; the FIN ends sending.
            if (_sendShut || State == ConnectionState.Closed)
            {
                throw Closed(null);
            }
        }

        /// <summary>
        /// Waits (up to <paramref name="timeout"/>) for sends in progress, then sends FIN;
        /// receiving goes on until the peer closes. False when a send was still stuck at the
        /// timeout (a peer that never reads): the caller resets.
        /// </summary>
        internal async Task<bool> ShutdownSendAsync(TimeSpan timeout)
        {
            if (!await _sendLock.WaitAsync(timeout).ConfigureAwait(false))
            {
                return false;
            }

            try
            {
                _sendShut = true;
                await _transport.ShutdownSendAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Already closed by the peer or by us.
            }
            finally
            {
                _sendLock.Release();
            }

            return true;
        }

        /// <summary>Why nothing can be sent: the TLS failure that ended the connection, or that it is closed.</summary>
        internal TcpException NotOpenError() =>
            Error != null && (Error.Kind == TcpErrorKind.TlsHandshakeFailed || Error.Kind == TcpErrorKind.CertificateInvalid)
                ? Error
                : new TcpException(TcpErrorKind.ConnectionClosed, $"Connection {Id} to {RemoteEndPoint} is closed; nothing was sent.");

        private TcpException Closed(Exception inner)
        {
            // A TLS session the peer ended with an alert (TLS 1.3's late refusal of our certificate): that cause, not a bare close.
            if (Error != null && (Error.Kind == TcpErrorKind.TlsHandshakeFailed || Error.Kind == TcpErrorKind.CertificateInvalid)) return Error;
            if (inner is TcpException tls && tls.Kind == TcpErrorKind.TlsHandshakeFailed) return tls;
            var socketError = (inner as SocketException)?.SocketErrorCode;
            if (socketError == SocketError.ConnectionReset || socketError == SocketError.ConnectionAborted || socketError == SocketError.Shutdown)
            {
                // The peer went away while we wrote: a reset, as on the receive side.
                return new TcpException(TcpErrorKind.ConnectionReset, $"Connection {Id} to {RemoteEndPoint} was reset by the peer.", inner);
            }

            return new TcpException(TcpErrorKind.ConnectionClosed, $"Connection {Id} to {RemoteEndPoint} is closed.", inner);
        }
    }
}

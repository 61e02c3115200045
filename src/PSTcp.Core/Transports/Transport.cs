using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>How a connection moves bytes: straight on the socket, or through TLS.</summary>
    internal abstract class Transport : IDisposable
    {
        protected Transport(Socket socket)
        {
            Socket = socket;
            // Nagle and its option are TCP's: a Unix domain socket has neither.
            if (!UnixSockets.IsUnix(socket)) socket.NoDelay = true;
        }

        private volatile bool _reset;

        public Socket Socket { get; }

        /// <summary>Anything to agree on before lines flow (the TLS handshake).</summary>
        public virtual Task HandshakeAsync() => Task.CompletedTask;

        /// <summary>Whether <see cref="WaitForDataAsync"/> can wait without a buffer (zero-byte reads).</summary>
        public abstract bool CanWaitForData { get; }

        public virtual ValueTask WaitForDataAsync() => default;

        /// <summary>
        /// Whether a completed <see cref="WaitForDataAsync"/> may have been a false alarm: the
        /// caller then reads with <see cref="TryReceive"/> and waits again if nothing was there.
        /// </summary>
        public virtual bool WaitMayBeSpurious => false;

        /// <summary>
        /// Reads what is there now without waiting: the count (0 when the peer closed its side),
        /// or -1 when nothing is waiting (or the transport can't tell without waiting).
        /// </summary>
        public virtual int TryReceive(ArraySegment<byte> buffer) => -1;

        /// <summary>Reads into the buffer; 0 means the peer closed its side.</summary>
        public abstract ValueTask<int> ReceiveAsync(ArraySegment<byte> buffer);

        /// <summary>Sends the whole buffer.</summary>
        public abstract ValueTask SendAsync(ArraySegment<byte> buffer);

        /// <summary>
        /// Sends what the socket takes now without waiting: the count (perhaps less than all, or 0),
        /// or -1 when the transport can't send without waiting (TLS). Never with a send in progress.
        /// </summary>
        public virtual int TrySend(ArraySegment<byte> buffer) => -1;

        /// <summary>Sends the segments in order, whole.</summary>
        public abstract ValueTask SendAsync(IList<ArraySegment<byte>> buffers);

        /// <summary>Sends end-of-stream; receiving goes on.</summary>
        public virtual Task ShutdownSendAsync()
        {
            Socket.Shutdown(SocketShutdown.Send);
            return Task.CompletedTask;
        }

        /// <summary>Makes the coming close a reset (RST), dropping whatever is still unsent.</summary>
        public void Reset()
        {
            _reset = true;
            try
            {
                Socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Already closed.
            }
        }

        /// <summary>Closes: FIN if it can (unless reset), then frees the socket. Safe to call twice.</summary>
        public virtual void Dispose()
        {
            try
            {
                if (!_reset) Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Already reset or closed: nothing left to shut down.
            }

            Socket.Dispose();
        }
    }

    /// <summary>Plain TCP with reusable awaitable socket operations: no allocation per receive or send.</summary>
    internal sealed class SocketTransport : Transport
    {
        private readonly SocketAwaitableEventArgs _receiveArgs = new SocketAwaitableEventArgs();
        private SocketAwaitableEventArgs _sendArgs;

        public SocketTransport(Socket socket)
            : base(socket)
        {
            // Only this transport's own synchronous calls see this (TryReceive, which must not
            // wait); the awaitable operations don't depend on it.
            socket.Blocking = false;
        }

        public override bool CanWaitForData => true;

        // Peeked bytes land here and are never read: every connection may share it.
        private static readonly byte[] s_peekByte = new byte[1];

        private readonly object _registration = new object();
        private ReadinessWaiter _waiter;
        private bool _pollerRefused;
        private bool _disposed;

        public override bool WaitMayBeSpurious => _waiter != null;

        public override ValueTask WaitForDataAsync()
        {
            var waiter = _waiter ?? RegisterWithPoller();
            return waiter != null ? waiter.WaitAsync() : PeekAsync();
        }

        private ReadinessWaiter RegisterWithPoller()
        {
            if (_pollerRefused) return null;
            lock (_registration)
            {
                // Under the lock Dispose takes: a socket closed meanwhile is not registered.
                if (!_disposed) _waiter = ReadinessPoller.TryRegister(Socket.Handle);
                _pollerRefused = _waiter == null;
                return _waiter;
            }
        }

        private async ValueTask PeekAsync()
        {
            // Waits for data without holding a buffer, so idle connections cost almost no
            // memory. A one-byte peek rather than a zero-byte read: on Linux a zero-byte read
            // can complete at once on a socket that has carried data, and the real read would
            // then wait holding its buffer.
            _receiveArgs.SetBuffer(s_peekByte, 0, 1);
            _receiveArgs.SocketFlags = SocketFlags.Peek;
            try
            {
                if (!Socket.ReceiveAsync(_receiveArgs)) _receiveArgs.Complete();
                await _receiveArgs;
            }
            finally
            {
                _receiveArgs.SocketFlags = SocketFlags.None;
            }
        }

        public override int TryReceive(ArraySegment<byte> buffer)
        {
            // One recv: what a busy connection's next read costs, where asking how much is
            // waiting first (an ioctl) would be two system calls.
            int received = Socket.Receive(buffer.Array, buffer.Offset, buffer.Count, SocketFlags.None, out var error);
            if (error == SocketError.Success) return received;
            if (error == SocketError.WouldBlock) return -1;
            throw new SocketException((int)error);
        }

        public override int TrySend(ArraySegment<byte> buffer)
        {
            // The socket is non-blocking (see the constructor): a full send buffer is WouldBlock.
            int sent = Socket.Send(buffer.Array, buffer.Offset, buffer.Count, SocketFlags.None, out var error);
            if (error == SocketError.Success) return sent;
            if (error == SocketError.WouldBlock) return 0;
            throw new SocketException((int)error);
        }

        public override async ValueTask<int> ReceiveAsync(ArraySegment<byte> buffer)
        {
            _receiveArgs.SetBuffer(buffer.Array, buffer.Offset, buffer.Count);
            if (!Socket.ReceiveAsync(_receiveArgs)) _receiveArgs.Complete();
            return await _receiveArgs;
        }

        public override async ValueTask SendAsync(ArraySegment<byte> buffer)
        {
            var args = _sendArgs ?? (_sendArgs = new SocketAwaitableEventArgs());
            if (args.BufferList != null) args.BufferList = null;
            int offset = buffer.Offset, remaining = buffer.Count;
            while (remaining > 0)
            {
                args.SetBuffer(buffer.Array, offset, remaining);
                if (!Socket.SendAsync(args)) args.Complete();
                int sent = await args;
                offset += sent;
                remaining -= sent;
            }
        }

        public override async ValueTask SendAsync(IList<ArraySegment<byte>> buffers)
        {
            var args = _sendArgs ?? (_sendArgs = new SocketAwaitableEventArgs());
            args.SetBuffer(null, 0, 0);
            args.BufferList = buffers;
            try
            {
                // Stream sockets finish a gathered send whole or fail.
                if (!Socket.SendAsync(args)) args.Complete();
                await args;
            }
            finally
            {
                args.BufferList = null;
            }
        }

        public override void Dispose()
        {
            lock (_registration)
            {
                // Out of the poller's set before the descriptor is closed and can be reused.
                _disposed = true;
                _waiter?.Close();
            }

            base.Dispose();
            _receiveArgs.Dispose();
            _sendArgs?.Dispose();
        }
    }
}

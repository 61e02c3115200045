using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// One TCP connection: a client connection, or the server side of an accepted one.
    /// A receive loop fills a pipe from the socket; a process loop frames lines out of it,
    /// hands each batch to the handler (echo, for servers) and queues the messages.
    /// </summary>
    public sealed partial class TcpConnection
    {
        private const int ReceiveSegmentSize = 64 * 1024;
        private static int s_nextId;

        private readonly Transport _transport;
        private readonly Pipe _input;
        private readonly CancellationTokenSource _abort = new CancellationTokenSource();
        private readonly LineFramer _framer;
        private readonly LineHandler _handler;
        private readonly List<TcpMessage> _batch = new List<TcpMessage>();
        private readonly List<long> _lineOffsets = new List<long>();
        private readonly bool _queueMessages;
        private readonly bool _makeMessages;
        private int _batchLines;
        private readonly System.Text.Encoding _encoding;
        private Exception _receiveError;
        private long _bytesReceived;
        private long _messagesReceived;
        private long _messagesSent;
        private long _dropped;
        private long _sequence;
        private long _lastReceiveTimestamp;
        private int _state;
        private volatile bool _stopping;
        private Task _completion;

        internal TcpConnection(Transport transport, ConnectionOptions options, MessageQueue queue, LineHandler handler, TcpServer server)
        {
            _transport = transport;
            var socket = transport.Socket;
            _handler = handler;
            _framer = new LineFramer(options.MaxLineLength);
            _encoding = options.Encoding;
            Framing = server?.Framing ?? PSTcp.Framing.MessageFraming.FromOptions(options);
            Queue = queue;
            Server = server;
            // An echo-only server (-NoQueue) neither queues nor builds messages: framing just
            // counts lines and enforces the limit.
            _queueMessages = server == null || server.Options.QueueMessages;
            _makeMessages = _queueMessages || (handler != null && handler.NeedsMessages);
            Id = Interlocked.Increment(ref s_nextId);
            Name = string.IsNullOrEmpty(options.Name) || server != null ? "Connection" + Id : options.Name;
            RemoteEndPoint = (IPEndPoint)socket.RemoteEndPoint;
            LocalEndPoint = (IPEndPoint)socket.LocalEndPoint;
            ConnectedAt = DateTimeOffset.Now;
            Direction = server?.Options.AcceptedDirection ?? MessageDirection.Inbound;
            _lastReceiveTimestamp = Stopwatch.GetTimestamp();

            // A line may fill the buffer up to the limit without the writer pausing, or the
            // framer could wait for an LF that the paused writer never delivers.
            long pause = Math.Max(options.MaxLineLength + 1L + ReceiveSegmentSize, 256 * 1024);
            _input = new Pipe(new PipeOptions(
                pauseWriterThreshold: pause,
                resumeWriterThreshold: pause / 2,
                minimumSegmentSize: ReceiveSegmentSize,
                readerScheduler: PipeScheduler.Inline,
                writerScheduler: PipeScheduler.Inline,
                useSynchronizationContext: false));
        }

        public int Id { get; }

        public string Name { get; }

        public IPEndPoint RemoteEndPoint { get; }

        public IPEndPoint LocalEndPoint { get; }

        public ConnectionState State => (ConnectionState)Volatile.Read(ref _state);

        public DateTimeOffset ConnectedAt { get; }

        /// <summary>How this connection's byte stream is cut into messages, and how messages sent on it are framed.</summary>
        public Framing.MessageFraming Framing { get; }

        /// <summary>The <see cref="TcpMessage.Direction"/> of this connection's messages.</summary>
        public MessageDirection Direction { get; internal set; }

        /// <summary>How lines are decoded into <see cref="TcpMessage.Text"/> (and encoded by senders).</summary>
        public System.Text.Encoding Encoding => _encoding;

        public long BytesSent => Interlocked.Read(ref _bytesSent);

        public long BytesReceived => Interlocked.Read(ref _bytesReceived);

        public long MessagesSent => Interlocked.Read(ref _messagesSent);

        public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

        public long MessagesDropped => Interlocked.Read(ref _dropped);

        /// <summary>The server that accepted this connection; null for a client connection.</summary>
        public TcpServer Server { get; }

        /// <summary>Where this connection's messages go: its own queue, or its server's.</summary>
        public MessageQueue Queue { get; }

        /// <summary>Why the connection ended, when it was not a clean close.</summary>
        public TcpException Error { get; private set; }

        /// <summary>Completes when the connection is closed and both loops have ended.</summary>
        public Task Completion => _completion;

        internal string SourceName => Server?.Name ?? Name;

        internal long LastReceiveTimestamp => Interlocked.Read(ref _lastReceiveTimestamp);

        internal void CountDropped() => Interlocked.Increment(ref _dropped);

        /// <summary>Counts lines written by a handler or a sender.</summary>
        public void CountMessagesSent(int count) => Interlocked.Add(ref _messagesSent, count);

        internal void Start()
        {
            _completion = RunAsync();
        }

        private async Task RunAsync()
        {
            if (Server != null && !await HandshakeAsync().ConfigureAwait(false))
            {
                return;
            }

            _handler?.OnConnected(this);
            var receiving = ReceiveLoopAsync();
            try
            {
                await ProcessLoopAsync().ConfigureAwait(false);
            }
            finally
            {
                MarkClosing();
                _transport.Dispose();
                await receiving.ConfigureAwait(false);
                Volatile.Write(ref _state, (int)ConnectionState.Closed);
                _handler?.OnDisconnected(this);
                if (Server == null)
                {
                    // A client connection owns its queue: consumers drain it, then see how it ended.
                    Queue.Complete(Error);
                }
                else
                {
                    Server.OnConnectionClosed(this);
                }

                _abort.Dispose();
            }
        }

        /// <summary>Server side: a failed TLS handshake costs only this connection, recorded quietly.</summary>
        private async Task<bool> HandshakeAsync()
        {
            try
            {
                await _transport.HandshakeAsync().ConfigureAwait(false);
                return true;
            }
            catch (TcpException e)
            {
                Error = e;
                Server.RecordError(e, this);
                MarkClosing();
                _transport.Dispose();
                Volatile.Write(ref _state, (int)ConnectionState.Closed);
                Server.OnConnectionClosed(this);
                _abort.Dispose();
                return false;
            }
        }

        private async Task ReceiveLoopAsync()
        {
            var writer = _input.Writer;
            var transport = _transport;
            bool waitForData = transport.CanWaitForData;
            try
            {
                while (true)
                {
                    if (waitForData)
                    {
                        await transport.WaitForDataAsync().ConfigureAwait(false);
                    }

                    var memory = writer.GetMemory(ReceiveSegmentSize);
                    if (!MemoryMarshal.TryGetArray<byte>(memory, out var segment))
                    {
                        throw new InvalidOperationException("The pipe's memory pool must be array-backed.");
                    }

                    int received = await transport.ReceiveAsync(segment).ConfigureAwait(false);
                    if (received == 0)
                    {
                        break;
                    }

                    // A full buffer means more is likely waiting: skip the next zero-byte read.
                    waitForData = transport.CanWaitForData && received < segment.Count;
                    writer.Advance(received);
                    Interlocked.Add(ref _bytesReceived, received);
                    Server?.CountBytesReceived(received);

                    var flush = await writer.FlushAsync().ConfigureAwait(false);
                    if (flush.IsCompleted)
                    {
                        break;
                    }
                }
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException || e is System.IO.IOException)
            {
                // The process loop decides what a failed receive means (reset vs. our own close).
                _receiveError = e;
            }
            finally
            {
                writer.Complete();
            }
        }

        private async Task ProcessLoopAsync()
        {
            var reader = _input.Reader;
            var token = _abort.Token;
            try
            {
                while (true)
                {
                    var result = await reader.ReadAsync().ConfigureAwait(false);
                    var buffer = result.Buffer;
                    var rest = buffer;
                    var frame = FrameLines(ref rest);
                    if (_batchLines > 0)
                    {
                        await DispatchAsync(buffer.Slice(0, rest.Start), token).ConfigureAwait(false);
                    }

                    if (frame == FrameResult.LineTooLong)
                    {
                        Fail(new TcpException(TcpErrorKind.LineTooLong,
                            $"Connection {Id} from {RemoteEndPoint} sent a line longer than {_framer.MaxLineLength} bytes; the connection was closed."));
                        reader.AdvanceTo(rest.Start);
                        return;
                    }

                    if (result.IsCompleted)
                    {
                        await FinishAtEndOfStreamAsync(rest, token).ConfigureAwait(false);
                        reader.AdvanceTo(rest.End);
                        return;
                    }

                    if (result.IsCanceled && _stopping)
                    {
                        // Stopping: every complete line read so far was handled; a partial one is dropped.
                        reader.AdvanceTo(rest.End);
                        return;
                    }

                    reader.AdvanceTo(rest.Start, buffer.End);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Aborted: idle timeout, stop timeout or a forced close.
            }
            catch (TcpException e)
            {
                Fail(e);
            }
            finally
            {
                reader.Complete();
            }
        }

        private async ValueTask FinishAtEndOfStreamAsync(ReadOnlySequence<byte> rest, CancellationToken token)
        {
            if (_receiveError != null)
            {
                if (!_abort.IsCancellationRequested && State == ConnectionState.Open && IsReset(_receiveError))
                {
                    // A partial line before a reset is dropped: the peer never finished it.
                    Fail(new TcpException(TcpErrorKind.ConnectionReset,
                        $"Connection {Id} to {RemoteEndPoint} was reset by the peer.", _receiveError));
                }

                return;
            }

            if (rest.IsEmpty)
            {
                return;
            }

            if (!_framer.FitsFinalFragment(rest))
            {
                Fail(new TcpException(TcpErrorKind.LineTooLong,
                    $"Connection {Id} from {RemoteEndPoint} sent a final line longer than {_framer.MaxLineLength} bytes."));
                return;
            }

            // The peer closed after an unterminated line: it is a message too.
            _batchLines++;
            if (_makeMessages) _batch.Add(NewMessage(rest, DateTime.UtcNow.Ticks));
            await DispatchAsync(rest, token).ConfigureAwait(false);
        }

        private static bool IsReset(Exception e) =>
            e is SocketException se && (se.SocketErrorCode == SocketError.ConnectionReset
                || se.SocketErrorCode == SocketError.ConnectionAborted);

        private async ValueTask DispatchAsync(ReadOnlySequence<byte> rawLines, CancellationToken token)
        {
            // Idle means no complete line: a client dribbling bytes without ever ending a line
            // (slowloris) is as idle as a silent one.
            Interlocked.Exchange(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
            Interlocked.Add(ref _messagesReceived, _batchLines);
            Server?.CountMessagesReceived(_batchLines);
            int queued = 0;
            try
            {
                if (_handler != null)
                {
                    await _handler.OnLinesAsync(this, rawLines, _batch, _batchLines, token).ConfigureAwait(false);
                }

                if (_queueMessages)
                {
                    var queue = Queue;
                    for (; queued < _batch.Count; queued++)
                    {
                        var write = queue.WriteAsync(_batch[queued], token);
                        if (!write.IsCompletedSuccessfully)
                        {
                            await write.ConfigureAwait(false);
                        }
                    }
                }
            }
            catch when (_queueMessages)
            {
                // The echo failed or the connection was aborted mid-batch: what was read but
                // not queued is counted as dropped, so received = queued + dropped holds.
                for (int i = queued; i < _batch.Count; i++)
                {
                    Queue.CountDropped(_batch[i]);
                }

                throw;
            }
            finally
            {
                _batch.Clear();
                _batchLines = 0;
            }
        }

        private void Fail(TcpException error)
        {
            if (Error != null) return;
            Error = error;
            Server?.RecordError(error, this);
            if (Server == null && error.Kind != TcpErrorKind.ConnectionReset)
            {
                Queue.ReportError(error, this);
            }
        }

        /// <summary>Stops reading: lines already read are still handled and queued, then the connection closes.</summary>
        internal void BeginStop()
        {
            _stopping = true;
            _input.Reader.CancelPendingRead();
        }

        /// <summary>
        /// Closes at once: pending waits are cancelled and the socket is closed, with a FIN, or
        /// with a reset that discards unsent data when <paramref name="reset"/> is true.
        /// </summary>
        public void Abort(bool reset = false)
        {
            MarkClosing();
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            if (reset) _transport.Reset();
            _transport.Dispose();
        }

        /// <summary>
        /// Closes gracefully: waits for sends in progress, sends FIN, lets the peer's last
        /// lines arrive for up to <paramref name="linger"/>, then closes.
        /// </summary>
        public async Task CloseAsync(TimeSpan linger)
        {
            if (MarkClosing() == ConnectionState.Open)
            {
                await ShutdownSendAsync().ConfigureAwait(false);
            }

            var finished = await Task.WhenAny(_completion, Task.Delay(linger)).ConfigureAwait(false);
            if (finished != _completion)
            {
                Abort();
            }

            await _completion.ConfigureAwait(false);
        }

        /// <summary>
        /// Half-close: waits for sends in progress, sends FIN, and keeps receiving until the peer
        /// closes, so a request can be followed by "done" and the whole answer still read.
        /// </summary>
        public async Task HalfCloseAsync()
        {
            if (Interlocked.CompareExchange(ref _state, (int)ConnectionState.HalfClosed, (int)ConnectionState.Open) == (int)ConnectionState.Open)
            {
                await ShutdownSendAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Moves Open or HalfClosed to Closing; returns the state it was in.</summary>
        private ConnectionState MarkClosing()
        {
            while (true)
            {
                int state = Volatile.Read(ref _state);
                if (state >= (int)ConnectionState.Closing
                    || Interlocked.CompareExchange(ref _state, (int)ConnectionState.Closing, state) == state)
                {
                    return (ConnectionState)state;
                }
            }
        }

        public override string ToString() => $"{Name} ({LocalEndPoint} -> {RemoteEndPoint}, {State})";
    }
}

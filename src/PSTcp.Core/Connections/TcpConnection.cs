using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>
    /// One TCP connection: a client connection, or the server side of an accepted one. This file
    /// is its lifecycle (open, half-closed, closing, closed) and identity; the receive loop is
    /// in TcpConnection.Receive.cs, sending in TcpConnection.Send.cs, connecting in
    /// TcpConnection.Connect.cs.
    /// </summary>
    public sealed partial class TcpConnection
    {
        private static int s_nextId;

        private readonly Transport _transport;
        private readonly CancellationTokenSource _abort = new CancellationTokenSource();
        private readonly TaskCompletionSource<bool> _closed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly bool _ownsQueue;
        private long _bytesReceived;
        private long _messagesReceived;
        private long _messagesSent;
        private long _dropped;
        private long _lastReceiveTimestamp;
        private int _state;
        private bool _countedActive;
        private int _wasReset;
        private Timer _proxyDeadline;

        // The graceful close and the receive loop meet at a gate: a batch is handled (handler,
        // forwarding) only while no close has begun, and a close shuts down sending only once
        // the batch in hand is done, so everything a handler sent for it goes out before the FIN.
        private const int GateIdle = 0;
        private const int GateBusy = 1;
        private const int GateDraining = 2;
        private const int GateDrainingBusy = 3;
        private int _gate;
        private TaskCompletionSource<bool> _batchDone;
        private TimeSpan _requestedCloseTimeout = TimeSpan.FromSeconds(5);

        /// <summary>The connection whose handler runs in this flow (set for handlers that may close their own connection).</summary>
        private static readonly AsyncLocal<TcpConnection> s_handling = new AsyncLocal<TcpConnection>();

        internal TcpConnection(Transport transport, ConnectionOptions options, MessageQueue queue, LineHandler handler, TcpServer server)
            : this(transport, options, queue, handler, server, ownsQueue: server == null)
        {
        }

        /// <param name="transport">The socket (or TLS stream) to use.</param>
        /// <param name="options">Framing, limits and encoding.</param>
        /// <param name="queue">Where messages go.</param>
        /// <param name="handler">What to do with each batch of messages (null: only queue them).</param>
        /// <param name="server">The server that accepted this connection; null for a client connection.</param>
        /// <param name="ownsQueue">Whether the queue ends with this connection (a client connection's own queue does; a relay's target side shares its server's).</param>
        /// <param name="queueMessages">For a client connection: whether its messages are queued (a server's say so in its options).</param>
        internal TcpConnection(Transport transport, ConnectionOptions options, MessageQueue queue, LineHandler handler, TcpServer server, bool ownsQueue, bool queueMessages = true)
        {
            _transport = transport;
            var socket = transport.Socket;
            _handler = handler;
            Encoding = options.Encoding;
            Framing = server?.Framing ?? MessageFraming.FromOptions(options);
            _framer = Framing.CreateFramer();
            _isRaw = Framing.Kind == FramingKind.Raw;
            Queue = queue;
            Server = server;
            _ownsQueue = ownsQueue;
            // An echo-only server (-NoQueue) neither queues nor builds messages: framing just
            // counts them and enforces the limit.
            _queueMessages = server == null ? queueMessages : server.Options.QueueMessages;
            _handlerNeedsMessages = handler != null && handler.NeedsMessages;
            _forwardsBytes = handler != null && handler.WantsData;
            Id = Interlocked.Increment(ref s_nextId);
            ConversationId = Id;
            Name = string.IsNullOrEmpty(options.Name) || server != null ? "Connection" + Id : options.Name;
            // Metrics name only what the user named: one series per "ConnectionN" would grow without bound.
            MetricName = server == null && !string.IsNullOrEmpty(options.Name) ? options.Name : null;
            RemoteEndPoint = socket.RemoteEndPoint;
            LocalEndPoint = socket.LocalEndPoint;
            ConnectedAt = DateTimeOffset.Now;
            Direction = server?.Options.AcceptedDirection ?? MessageDirection.Inbound;
            _lastReceiveTimestamp = Stopwatch.GetTimestamp();
            if (server != null && server.Options.ProxyProtocol)
            {
                // The header comes first; a peer that never finishes it is cut like a silent TLS client.
                _awaitingProxyHeader = true;
                _proxyDeadline = new Timer(_ => { if (_awaitingProxyHeader) { server.CountRejected(); Abort(); } }, null, server.Options.TlsHandshakeTimeout, Timeout.InfiniteTimeSpan);
            }
        }

        public int Id { get; }

        public string Name { get; }

        /// <summary>Its own Id; on a relay's target side, the Id of the client it was opened for (both directions of a pair share it).</summary>
        public int ConversationId { get; internal set; }

        /// <summary>
        /// The peer; behind a PROXY-protocol proxy, the real client the header named. An IPEndPoint
        /// over TCP; a UnixDomainSocketEndPoint over a Unix domain socket.
        /// </summary>
        public EndPoint RemoteEndPoint { get; internal set; }

        public EndPoint LocalEndPoint { get; }

        /// <summary>What the TLS handshake agreed on (version, cipher suite, ALPN, the peer's certificate); null without TLS.</summary>
        public TlsInfo Tls => (_transport as TlsTransport)?.Info;

        public ConnectionState State => (ConnectionState)Volatile.Read(ref _state);

        /// <summary>
        /// Whether the connection ended with a reset of ours (RST: what the peer had not taken
        /// yet was lost): asked for, or a graceful close that ran out of time.
        /// </summary>
        public bool WasReset => Volatile.Read(ref _wasReset) != 0;

        public DateTimeOffset ConnectedAt { get; }

        /// <summary>How this connection's byte stream is cut into messages, and how messages sent on it are framed.</summary>
        public MessageFraming Framing { get; }

        /// <summary>The <see cref="TcpMessage.Direction"/> of this connection's messages.</summary>
        public MessageDirection Direction { get; internal set; }

        public long BytesSent => Interlocked.Read(ref _bytesSent);

        public long BytesReceived => Interlocked.Read(ref _bytesReceived);

        public long MessagesSent => Interlocked.Read(ref _messagesSent);

        public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

        public long MessagesDropped => Interlocked.Read(ref _dropped);

        /// <summary>Bytes of Data queued in the queue this connection feeds (its own; an accepted one's is its server's).</summary>
        public long QueueBytes => Queue?.Bytes ?? 0;

        /// <summary>The server that accepted this connection; null for a client connection.</summary>
        public TcpServer Server { get; }

        /// <summary>Why the connection ended, when it was not a clean close.</summary>
        public TcpException Error { get; private set; }

        /// <summary>Whether a close was asked for while this connection's handler ran: it closes once the handler returns.</summary>
        public bool CloseRequested => Volatile.Read(ref _closeRequested);

        /// <summary>How messages are decoded into <see cref="TcpMessage.Text"/> (and encoded by senders).</summary>
        internal System.Text.Encoding Encoding { get; }

        /// <summary>Where this connection's messages go: its own queue, or its server's.</summary>
        internal MessageQueue Queue { get; }

        /// <summary>Completes when the connection is closed and its loop has ended.</summary>
        internal Task Completion => _closed.Task;

        /// <summary>
        /// This client connection as a source of messages. A separate object, not an interface
        /// on this class: PowerShell would show an interface's Queue and Completion as
        /// properties of every connection.
        /// </summary>
        internal IMessageSource AsSource() => _source ?? (_source = new Source(this));

        private IMessageSource _source;

        private sealed class Source : IMessageSource
        {
            private readonly TcpConnection _connection;

            public Source(TcpConnection connection) => _connection = connection;

            public string Name => _connection.Name;

            public MessageQueue Queue => _connection.Queue;

            public TcpException Error => _connection.Error;

            public event EventHandler<TcpErrorEventArgs> ErrorReported
            {
                add => _connection.ErrorReported += value;
                remove => _connection.ErrorReported -= value;
            }

            // A client connection is its own only connection: nothing to raise.
            public event EventHandler<TcpConnectionEventArgs> ConnectionChanged { add { } remove { } }
        }

        /// <summary>A client connection's errors that consumers should see (LineTooLong); a reset ends the source instead.</summary>
        public event EventHandler<TcpErrorEventArgs> ErrorReported;

        internal string SourceName => Server?.Name ?? Name;

        /// <summary>The pstcp.connection.name of a client connection the user named; null otherwise.</summary>
        internal string MetricName { get; }

        internal long LastReceiveTimestamp => Interlocked.Read(ref _lastReceiveTimestamp);

        internal void CountDropped(int count) => Interlocked.Add(ref _dropped, count);

        /// <summary>Counts messages written by a handler or a sender.</summary>
        public void CountMessagesSent(int count)
        {
            Interlocked.Add(ref _messagesSent, count);
            Diagnostics.PSTcpMetrics.MessagesSent(this, count);
        }

        internal void Start()
        {
            _countedActive = Diagnostics.PSTcpMetrics.ConnectionOpened(this);
            _ = RunAsync();
        }

        private async Task RunAsync()
        {
            try
            {
                if (_awaitingProxyHeader && _transport is TlsTransport && !await ReadProxyHeaderBeforeTlsAsync().ConfigureAwait(false))
                {
                    return;
                }

                if (Server != null && !await HandshakeAsync().ConfigureAwait(false))
                {
                    return;
                }

                _handler?.OnConnected(this);
                await ReceiveLoopAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // A bug, not a network event: it ends only this connection, and says so.
                Fail(new TcpException(TcpErrorKind.SocketError, $"Connection {Id} failed unexpectedly: {e.GetType().Name}: {e.Message}", e));
            }
            finally
            {
                MarkClosing();
                _transport.Dispose();
                Volatile.Write(ref _state, (int)ConnectionState.Closed);
                _handler?.OnDisconnected(this);
                if (_ownsQueue)
                {
                    // A client connection owns its queue: consumers drain it, then see how it ended.
                    Queue.Complete();
                }

                _proxyDeadline?.Dispose();
                Diagnostics.PSTcpMetrics.ConnectionClosed(this, _countedActive);
                Server?.OnConnectionClosed(this);
                _closed.TrySetResult(true);
                _abort.Dispose();
            }
        }

        /// <summary>Server side: a failed TLS handshake costs only this connection, recorded quietly.</summary>
        private async Task<bool> HandshakeAsync()
        {
            var tag = new System.Collections.Generic.KeyValuePair<string, object>(Diagnostics.PSTcpMetrics.ServerNameTag, Server.Name);
            bool counted = _transport is TlsTransport && Diagnostics.PSTcpMetrics.TlsHandshakeStarted(tag);
            try
            {
                await _transport.HandshakeAsync().ConfigureAwait(false);
                return true;
            }
            catch (TcpException e)
            {
                Error = e;
                Server.RecordError(e, this);
                return false;
            }
            finally
            {
                Diagnostics.PSTcpMetrics.TlsHandshakeEnded(counted, tag);
            }
        }

        /// <summary>Whether the end of this connection is our own doing (stop, abort, close), so a failing socket is no error.</summary>
        private bool ClosingByUs => _abort.IsCancellationRequested || _stopping || State >= ConnectionState.Closing;

        private void Fail(TcpException error)
        {
            if (Error != null) return;
            Error = error;
            Server?.RecordError(error, this);
            if (Server == null && error.Kind != TcpErrorKind.ConnectionReset)
            {
                ErrorReported?.Invoke(this, new TcpErrorEventArgs(error, this));
            }
        }

        /// <summary>
        /// Stops reading: what was read is still handled and queued (a partial message is
        /// dropped), then the connection closes with a FIN.
        /// </summary>
        internal void BeginStop()
        {
            _stopping = true;
            if (Interlocked.CompareExchange(ref _phase, PhaseStopped, PhaseWaiting) == PhaseWaiting)
            {
                // Waiting for data: nothing read is pending, so close now (FIN) to end the wait.
                _transport.Dispose();
            }
        }

        /// <summary>
        /// Closes at once: pending waits are cancelled and the socket is closed, with a FIN, or
        /// with a reset that discards unsent data when <paramref name="reset"/> is true.
        /// </summary>
        public void Abort(bool reset = false)
        {
            MarkClosing();
            if (reset && !_closed.Task.IsCompleted) Volatile.Write(ref _wasReset, 1);
            try { _abort.Cancel(); } catch (ObjectDisposedException) { }
            if (reset) _transport.Reset();
            _transport.Dispose();
        }

        /// <summary>
        /// Resets the connection (RST, unsent data discarded). Called while this connection's own
        /// handler runs, it asks for the reset and returns at once: the messages the handler was
        /// given are queued first, then the connection is reset instead of closed.
        /// </summary>
        public void Reset()
        {
            if (Volatile.Read(ref _inHandler) && ReferenceEquals(s_handling.Value, this))
            {
                RequestReset();
                // The handler may have returned since the check (this call continuing on
                // another thread): the loop has looked already, so nobody else would act.
                Interlocked.MemoryBarrier();
                if (!Volatile.Read(ref _inHandler)) Abort(reset: true);
                return;
            }

            Abort(reset: true);
        }

        /// <summary>For a handler resetting its own connection: the reset comes once its batch is queued.</summary>
        internal void RequestReset()
        {
            Volatile.Write(ref _resetRequested, true);
            Volatile.Write(ref _closeRequested, true);
        }

        /// <summary>
        /// Closes gracefully within <paramref name="timeout"/>: stops handling what arrives (no
        /// handler, no echo; it is still queued), lets the batch in hand and sends in progress
        /// finish, sends FIN, reads (queueing) until the peer's FIN, then closes. Only at the
        /// timeout (a send stuck on a peer that never reads, a peer that never closes) it resets
        /// the connection and returns false (<see cref="WasReset"/> is then true). It returns
        /// within <paramref name="timeout"/> plus a few milliseconds, whatever the peer does.
        /// Called from this connection's own handler, it asks for the close and returns at
        /// once: the connection closes that way when the handler returns, after what it sent.
        /// </summary>
        public Task<bool> CloseAsync(TimeSpan timeout)
        {
            if (Volatile.Read(ref _inHandler) && ReferenceEquals(s_handling.Value, this))
            {
                RequestClose(timeout);
                // The handler may have returned since the check (a Stop-TcpServer from the
                // handler continues on another thread): the loop has looked already, so start
                // the close here; whoever gets there first starts it.
                Interlocked.MemoryBarrier();
                if (!Volatile.Read(ref _inHandler)) StartRequestedClose();
                return Task.FromResult(true);
            }

            return GracefulCloseAsync(timeout);
        }

        /// <summary>
        /// For a handler closing its own connection (the module's handlers know they are one):
        /// the close starts once the handler returns, with <paramref name="timeout"/>.
        /// </summary>
        internal void RequestClose(TimeSpan timeout)
        {
            _requestedCloseTimeout = timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout;
            Volatile.Write(ref _closeRequested, true);
        }

        /// <summary>Starts the close a handler asked for, once, whoever gets there first.</summary>
        private void StartRequestedClose()
        {
            if (Interlocked.Exchange(ref _closeStarted, 1) != 0) return;
            _ = GracefulCloseAsync(_requestedCloseTimeout);
        }

        /// <summary>Whether <paramref name="connection"/>'s handler is what runs in this flow.</summary>
        internal static bool IsHandlerOf(TcpConnection connection) => connection != null && ReferenceEquals(s_handling.Value, connection);

        private async Task<bool> GracefulCloseAsync(TimeSpan timeout)
        {
            try
            {
                return await GracefulCloseCoreAsync(timeout).ConfigureAwait(false);
            }
            catch (Exception e) when (!(e is OutOfMemoryException))
            {
                // Whatever failed (a transport mid-handshake), the close must still end, and say how.
                return await ResetAsync().ConfigureAwait(false);
            }
        }

        private async Task<bool> GracefulCloseCoreAsync(TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            if (timeout < TimeSpan.Zero) timeout = TimeSpan.Zero;
            if (MarkClosing() == ConnectionState.Closed || Completion.IsCompleted)
            {
                return !WasReset;
            }

            // Stop taking new work, and wait for the batch in hand (its echo, its reply).
            var batch = BeginDrain();
            if (!batch.IsCompleted && !await Within(batch, timeout - clock.Elapsed).ConfigureAwait(false))
            {
                return await ResetAsync().ConfigureAwait(false);
            }

            // Finish sending (sends in progress hold the lock), then FIN.
            if (!await ShutdownSendAsync(Remaining(timeout, clock)).ConfigureAwait(false))
            {
                return await ResetAsync().ConfigureAwait(false);
            }

            // The receive loop reads on, queueing, until the peer's FIN; then it closes.
            if (!await Within(Completion, timeout - clock.Elapsed).ConfigureAwait(false))
            {
                return await ResetAsync().ConfigureAwait(false);
            }

            return !WasReset;
        }

        private static TimeSpan Remaining(TimeSpan timeout, Stopwatch clock)
        {
            var left = timeout - clock.Elapsed;
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }

        private static async Task<bool> Within(Task task, TimeSpan left)
        {
            if (task.IsCompleted) return true;
            if (left <= TimeSpan.Zero) return false;
            using (var cts = new CancellationTokenSource())
            {
                var delay = Task.Delay(left, cts.Token);
                bool done = await Task.WhenAny(task, delay).ConfigureAwait(false) == task;
                cts.Cancel();
                return done;
            }
        }

        /// <summary>The timeout passed: reset, and wait (briefly) for the loop to end.</summary>
        private async Task<bool> ResetAsync()
        {
            if (Completion.IsCompleted) return !WasReset;
            Abort(reset: true);
            await Within(Completion, TimeSpan.FromMilliseconds(200)).ConfigureAwait(false);
            return false;
        }

        /// <summary>Closes the gate to new batches; completes once the batch in hand (if any) is done.</summary>
        private Task BeginDrain()
        {
            while (true)
            {
                int gate = Volatile.Read(ref _gate);
                if (gate == GateIdle)
                {
                    if (Interlocked.CompareExchange(ref _gate, GateDraining, GateIdle) == GateIdle) return Task.CompletedTask;
                }
                else if (gate == GateBusy)
                {
                    if (Volatile.Read(ref _batchDone) == null)
                    {
                        Interlocked.CompareExchange(ref _batchDone, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously), null);
                    }

                    var done = Volatile.Read(ref _batchDone);
                    if (Interlocked.CompareExchange(ref _gate, GateDrainingBusy, GateBusy) == GateBusy) return done.Task;
                }
                else
                {
                    return gate == GateDraining ? Task.CompletedTask : Volatile.Read(ref _batchDone).Task;
                }
            }
        }

        /// <summary>Receive loop: a batch begins; false when a close has begun (the batch is only queued).</summary>
        private bool EnterBatch() => Interlocked.CompareExchange(ref _gate, GateBusy, GateIdle) == GateIdle;

        /// <summary>Receive loop: the batch is done; a close waiting for it goes on.</summary>
        private void LeaveBatch()
        {
            if (Interlocked.CompareExchange(ref _gate, GateIdle, GateBusy) != GateBusy)
            {
                Volatile.Write(ref _gate, GateDraining);
                Volatile.Read(ref _batchDone)?.TrySetResult(true);
            }
        }

        /// <summary>
        /// Half-close: waits for sends in progress, sends FIN, and keeps receiving until the peer
        /// closes, so a request can be followed by "done" and the whole answer still read.
        /// </summary>
        public async Task HalfCloseAsync()
        {
            if (Interlocked.CompareExchange(ref _state, (int)ConnectionState.HalfClosed, (int)ConnectionState.Open) == (int)ConnectionState.Open)
            {
                await ShutdownSendAsync(Timeout.InfiniteTimeSpan).ConfigureAwait(false);
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

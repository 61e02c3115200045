using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// A listener whose accepted connections hand their lines to a <see cref="LineHandler"/>
    /// and queue them, from the moment it starts, in one bounded <see cref="MessageQueue"/>.
    /// </summary>
    public sealed class TcpServer
    {
        private static int s_nextId;

        private readonly Socket _listener;
        private readonly LineHandler _handler;
        private readonly ConcurrentDictionary<int, TcpConnection> _connections = new ConcurrentDictionary<int, TcpConnection>();
        private readonly TcpServerOptions _options;
        private readonly Timer _idleTimer;
        private readonly object _stopLock = new object();
        private Task _acceptLoop;
        private Task<bool> _stopTask;
        private int _state;
        private long _totalConnections;
        private long _connectionsRefused;
        private long _connectionsRejected;
        private long _messagesReceived;
        private long _bytesReceived;
        private long _errorCount;

        private TcpServer(Socket listener, TcpServerOptions options, LineHandler handler)
        {
            _listener = listener;
            _options = options;
            _handler = handler;
            Id = Interlocked.Increment(ref s_nextId);
            Name = string.IsNullOrEmpty(options.Name) ? "Server" + Id : options.Name;
            LocalEndPoint = listener.LocalEndPoint;
            StartTime = DateTimeOffset.Now;
            Queue = new MessageQueue(options.QueueCapacity, options.QueueFullMode, options.QueueByteLimit);
            Framing = PSTcp.Framing.MessageFraming.FromOptions(options);
            if (options.IdleTimeout > TimeSpan.Zero)
            {
                var period = TimeSpan.FromMilliseconds(Math.Max(50, Math.Min(1000, options.IdleTimeout.TotalMilliseconds / 4)));
                _idleTimer = new Timer(_ => CloseIdleConnections(), null, period, period);
            }

            Diagnostics.PSTcpMetrics.ServerStarted(this);
        }

        public int Id { get; }

        public string Name { get; }

        /// <summary>Where it listens: an IPEndPoint, or a UnixDomainSocketEndPoint (its path) for -UnixSocket.</summary>
        public EndPoint LocalEndPoint { get; }

        /// <summary>The TCP port; 0 for a server on a Unix domain socket.</summary>
        public int Port => (LocalEndPoint as IPEndPoint)?.Port ?? 0;

        /// <summary>The Unix domain socket's path it listens on; null for a TCP server.</summary>
        public string UnixSocketPath => _options.UnixSocketPath;

        public ServerState State => (ServerState)Volatile.Read(ref _state);

        public DateTimeOffset StartTime { get; }

        public int ConnectionCount => _connections.Count;

        public long TotalConnections => Interlocked.Read(ref _totalConnections);

        /// <summary>Connections closed at once because <see cref="TcpServerOptions.MaxConnections"/> were open.</summary>
        public long ConnectionsRefused => Interlocked.Read(ref _connectionsRefused);

        /// <summary>Connections closed because the peer is not in the allow list, or (with PROXY protocol) sent no valid header or is not a trusted proxy.</summary>
        public long ConnectionsRejected => Interlocked.Read(ref _connectionsRejected);

        public long MessagesReceived => Interlocked.Read(ref _messagesReceived);

        public long BytesReceived => Interlocked.Read(ref _bytesReceived);

        public long MessagesDropped => Queue.DroppedCount;

        public int QueueLength => Queue.Count;

        /// <summary>Bytes of the queued messages' Data (bounded by -QueueByteLimit).</summary>
        public long QueueBytes => Queue.Bytes;

        /// <summary>Connection failures recorded so far (line too long, reset, …).</summary>
        public long ErrorCount => Interlocked.Read(ref _errorCount);

        public TcpException LastError { get; private set; }

        public TcpServerOptions Options => _options;

        /// <summary>A relay's target, host:port; null on other servers.</summary>
        public string Target => (_handler as RelayHandler)?.Target;

        /// <summary>A relay's faults (Add-TcpFault); null on other servers.</summary>
        internal RelayFaults Faults => (_handler as RelayHandler)?.Faults;

        /// <summary>How accepted connections' byte streams are cut into messages.</summary>
        public PSTcp.Framing.MessageFraming Framing { get; }

        /// <summary>The messages read from every connection and not yet taken by a consumer.</summary>
        internal MessageQueue Queue { get; }


        /// <summary>This server as a source of messages (a separate object: PowerShell would show an interface's members as properties).</summary>
        internal IMessageSource AsSource() => _source ?? (_source = new Source(this));

        private IMessageSource _source;

        private sealed class Source : IMessageSource
        {
            private readonly TcpServer _server;

            public Source(TcpServer server) => _server = server;

            public string Name => _server.Name;

            public MessageQueue Queue => _server.Queue;

            /// <summary>A server ends cleanly when stopped: its connections' failures are reported as they happen.</summary>
            public TcpException Error => null;

            public event EventHandler<TcpErrorEventArgs> ErrorReported
            {
                add => _server.ErrorReported += value;
                remove => _server.ErrorReported -= value;
            }

            public event EventHandler<TcpConnectionEventArgs> ConnectionChanged
            {
                add => _server.ConnectionChanged += value;
                remove => _server.ConnectionChanged -= value;
            }
        }

        /// <summary>Raised (on a socket thread) for failures consumers should see (LineTooLong, HandlerFailed …); resets stay quiet.</summary>
        public event EventHandler<TcpErrorEventArgs> ErrorReported;

        /// <summary>Raised (on a socket thread) when a connection is accepted or closes.</summary>
        public event EventHandler<TcpConnectionEventArgs> ConnectionChanged;

        public IReadOnlyList<TcpConnection> Connections => _connections.Values.OrderBy(c => c.Id).ToList();

        /// <summary>Binds and starts accepting. Fails at once (PortInUse, AddressNotAvailable) with nothing left behind.</summary>
        public static TcpServer Start(TcpServerOptions options, LineHandler handler)
        {
            options.Validate();
            if (options.Port < 0 || options.Port > 65535) throw new ArgumentOutOfRangeException(nameof(options.Port));
            if (options.MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(options.MaxConnections));
            if (options.UnixSocketPath != null)
            {
                var unixServer = new TcpServer(UnixListener.Listen(options.UnixSocketPath), options, handler ?? EchoLineHandler.Instance);
                unixServer._acceptLoop = unixServer.AcceptLoopAsync();
                return unixServer;
            }

            var address = ParseAddress(options.Address);
            var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (address.Equals(IPAddress.IPv6Any))
                {
                    // "::" serves both families where the OS allows it.
                    try { listener.DualMode = true; } catch (SocketException) { }
                }

                listener.Bind(new IPEndPoint(address, options.Port));
                listener.Listen(512);
            }
            catch (SocketException e)
            {
                listener.Dispose();
                throw BindError(e, options);
            }

            var server = new TcpServer(listener, options, handler ?? EchoLineHandler.Instance);
            server._acceptLoop = server.AcceptLoopAsync();
            return server;
        }

        private static IPAddress ParseAddress(string text)
        {
            if (string.IsNullOrWhiteSpace(text) || text == "*") return IPAddress.Any;
            if (IPAddress.TryParse(text.Trim('[', ']'), out var address)) return address;
            try
            {
                var resolved = Dns.GetHostAddresses(text);
                if (resolved.Length > 0) return resolved[0];
            }
            catch (SocketException)
            {
                // Reported below as an address this machine can't listen on.
            }

            throw new TcpException(TcpErrorKind.AddressNotAvailable, $"'{text}' is not an address this machine can listen on.");
        }

        private static TcpException BindError(SocketException e, TcpServerOptions options)
        {
            var where = $"{options.Address}:{options.Port}";
            switch (e.SocketErrorCode)
            {
                case SocketError.AddressAlreadyInUse:
                    return new TcpException(TcpErrorKind.PortInUse, $"Port {options.Port} is already in use on {options.Address}.", e);
                case SocketError.AddressNotAvailable:
                    return new TcpException(TcpErrorKind.AddressNotAvailable, $"{options.Address} is not an address of this machine.", e);
                case SocketError.AccessDenied:
                    return new TcpException(TcpErrorKind.PortInUse, $"Permission denied to listen on {where}: ports below 1024 need elevation.", e);
                default:
                    return new TcpException(TcpErrorKind.AddressNotAvailable, $"Can't listen on {where}: {e.Message}", e);
            }
        }

        private async Task AcceptLoopAsync()
        {
            var backoff = TimeSpan.Zero;
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptAsync().ConfigureAwait(false);
                    backoff = TimeSpan.Zero;
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted || e.SocketErrorCode == SocketError.Interrupted)
                {
                    return;
                }
                catch (SocketException e)
                {
                    // A connection that failed between SYN and accept, or the process is out of
                    // handles: count it, back off (5 ms doubling to 1 s, as Go's http server
                    // does) so a persistent failure doesn't spin, and keep serving the others.
                    RecordError(new TcpException(TcpErrorKind.SocketError, "Accepting a connection failed: " + e.Message, e), null);
                    if (State != ServerState.Running && State != ServerState.Suspended) return;
                    backoff = backoff == TimeSpan.Zero ? TimeSpan.FromMilliseconds(5) : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.TicksPerSecond));
                    await Task.Delay(backoff).ConfigureAwait(false);
                    continue;
                }
                catch (Exception e)
                {
                    // Anything else is a bug or a broken listener: the server can't go on.
                    RecordError(new TcpException(TcpErrorKind.SocketError, "The listener failed: " + e.Message, e), null);
                    Volatile.Write(ref _state, (int)ServerState.Failed);
                    return;
                }

                if (Volatile.Read(ref _state) == (int)ServerState.Suspended && HoldWhileSuspended(socket))
                {
                    // Timeout mode: no more accepts until resumed or stopped, so the backlog fills.
                    await ResumedOrStopped().ConfigureAwait(false);
                    continue;
                }

                Accept(socket);
            }
        }

        private void Accept(Socket socket)
        {
            if (!IsAllowed(socket))
            {
                // Never reaches the handler or the queue.
                Interlocked.Increment(ref _connectionsRejected);
                Diagnostics.PSTcpMetrics.Rejected(this, "not_allowed");
                socket.Dispose();
                return;
            }

            if (State != ServerState.Running || _connections.Count >= _options.MaxConnections)
            {
                if (State == ServerState.Suspended)
                {
                    // Suspend-TcpServer -Mode Refuse: the attempt is cut with a reset, the port stays ours.
                    Interlocked.Increment(ref _connectionsRefused);
                    Diagnostics.PSTcpMetrics.Rejected(this, "suspended");
                    ResetSocket(socket);
                    return;
                }

                Interlocked.Increment(ref _connectionsRefused);
                Diagnostics.PSTcpMetrics.Rejected(this, State == ServerState.Running ? "max_connections" : "stopping");
                socket.Dispose();
                return;
            }

            TcpConnection connection;
            try
            {
                Transport transport = _options.Certificate != null
                    ? TlsTransport.ForServer(socket, _options)
                    : (Transport)new SocketTransport(socket);
                connection = new TcpConnection(transport, _options, Queue, _handler, this);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                // Reset before we got to it.
                socket.Dispose();
                return;
            }

            Interlocked.Increment(ref _totalConnections);
            _connections[connection.Id] = connection;
            ConnectionChanged?.Invoke(this, new TcpConnectionEventArgs(connection, opened: true));
            connection.Start();
        }

        // Suspend-TcpServer (see TcpServer.Suspend.cs would be tidier; kept here, small and additive).
        private readonly List<Socket> _held = new List<Socket>();
        private SuspendMode _suspendMode;
        private TaskCompletionSource<bool> _resumed = NewSignal();

        private static TaskCompletionSource<bool> NewSignal() => new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

        private Task ResumedOrStopped()
        {
            lock (_held) return State == ServerState.Suspended ? _resumed.Task : Task.CompletedTask;
        }

        private void SignalResumed()
        {
            TaskCompletionSource<bool> signal;
            lock (_held)
            {
                signal = _resumed;
                _resumed = NewSignal();
            }

            signal.TrySetResult(true);
        }

        /// <summary>How a suspended server treats new connection attempts; meaningful while <see cref="State"/> is Suspended.</summary>
        public SuspendMode SuspendMode => _suspendMode;

        /// <summary>
        /// Refuses new connections while the listener keeps the port: <see cref="SuspendMode.Refuse"/>
        /// accepts and resets each attempt at once; <see cref="SuspendMode.Timeout"/> stops taking
        /// connections from a backlog shrunk to its minimum, so once it is full (a connection or
        /// two) further connects get no answer and time out. Open connections go on. False when
        /// the server is not running (stopping, stopped, already suspended).
        /// </summary>
        public bool Suspend(SuspendMode mode = SuspendMode.Refuse)
        {
            lock (_stopLock)
            {
                if (State != ServerState.Running) return false;
                _suspendMode = mode;
                if (mode == SuspendMode.Timeout)
                {
                    // listen() again only changes the backlog (Linux, BSD, Windows alike).
                    try { _listener.Listen(0); } catch (SocketException) { }
                }

                Volatile.Write(ref _state, (int)ServerState.Suspended);
                return true;
            }
        }

        /// <summary>Takes connections again (those held in the backlog while suspended are served now). False when not suspended.</summary>
        public bool Resume()
        {
            List<Socket> held;
            lock (_stopLock)
            {
                if (State != ServerState.Suspended) return false;
                if (_suspendMode == SuspendMode.Timeout)
                {
                    try { _listener.Listen(512); } catch (SocketException) { }
                }

                lock (_held)
                {
                    Volatile.Write(ref _state, (int)ServerState.Running);
                    held = new List<Socket>(_held);
                    _held.Clear();
                }
            }

            SignalResumed();

            foreach (var socket in held) Accept(socket);
            return true;
        }

        /// <summary>While suspended in Timeout mode, an accepted socket waits unserved for the resume; true when held.</summary>
        private bool HoldWhileSuspended(Socket socket)
        {
            if (_suspendMode != SuspendMode.Timeout) return false;
            lock (_held)
            {
                if (State != ServerState.Suspended) return false;
                _held.Add(socket);
                return true;
            }
        }

        private static void ResetSocket(Socket socket)
        {
            try { socket.LingerState = new LingerOption(true, 0); }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException) { }
            socket.Dispose();
        }

        private static readonly AddressRange[] s_loopback = { AddressRange.Parse("127.0.0.0/8"), AddressRange.Parse("::1") };

        /// <summary>
        /// At accept: behind a PROXY-protocol proxy, the peer must be a trusted proxy (the allow
        /// list applies to the real client, once its header names it); otherwise the allow list.
        /// </summary>
        private bool IsAllowed(Socket socket)
        {
            // A Unix domain socket's peers are local processes: the address lists don't apply.
            if (UnixSockets.IsUnix(socket)) return true;
            try
            {
                var remote = ((IPEndPoint)socket.RemoteEndPoint).Address;
                if (_options.ProxyProtocol)
                {
                    var trusted = _options.TrustedProxies;
                    return (trusted == null || trusted.Count == 0 ? s_loopback : trusted).Any(range => range.Contains(remote));
                }

                return IsAllowed(remote);
            }
            catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
            {
                return false;
            }
        }

        /// <summary>Whether the allow list lets <paramref name="address"/> in.</summary>
        internal bool IsAllowed(IPAddress address)
        {
            var allowed = _options.AllowedRemoteAddresses;
            return allowed == null || allowed.Count == 0 || allowed.Any(range => range.Contains(address));
        }

        /// <summary>Counts a connection closed for its PROXY header (missing, malformed) or its real source (not allowed).</summary>
        internal void CountRejected()
        {
            Interlocked.Increment(ref _connectionsRejected);
            Diagnostics.PSTcpMetrics.Rejected(this, "proxy_protocol");
        }

        internal void OnConnectionClosed(TcpConnection connection)
        {
            if (_connections.TryRemove(connection.Id, out _))
            {
                ConnectionChanged?.Invoke(this, new TcpConnectionEventArgs(connection, opened: false));
            }
        }

        internal void CountBytesReceived(int count) => Interlocked.Add(ref _bytesReceived, count);

        internal void CountMessagesReceived(int count) => Interlocked.Add(ref _messagesReceived, count);

        /// <summary>Counts a failure on the server and tells its consumers (resets stay quiet).</summary>
        public void RecordError(TcpException error, TcpConnection connection)
        {
            Interlocked.Increment(ref _errorCount);
            LastError = error;
            if (error.Kind == TcpErrorKind.HandlerFailed) Diagnostics.PSTcpMetrics.HandlerFailed(this);
            if (error.Kind != TcpErrorKind.ConnectionReset && error.Kind != TcpErrorKind.TlsHandshakeFailed)
            {
                ErrorReported?.Invoke(this, new TcpErrorEventArgs(error, connection));
            }
        }

        private void CloseIdleConnections()
        {
            long limit = (long)(_options.IdleTimeout.TotalSeconds * Stopwatch.Frequency);
            long now = Stopwatch.GetTimestamp();
            foreach (var connection in _connections.Values)
            {
                // Idle is silence while ready to read: a connection paused by its own full
                // Wait-mode queue or a busy handler is not idle (its clock restarts when it reads again).
                if (now - connection.LastReceiveTimestamp > limit && connection.IsReadyToRead)
                {
                    connection.Abort();
                }
            }
        }

        /// <summary>
        /// Stops accepting, lets every connection finish the messages it already read (echo and
        /// queue) within <see cref="TcpServerOptions.StopTimeout"/>, closes them, then completes
        /// the queue so consumers drain and end.
        /// </summary>
        public Task<bool> StopAsync() => StopAsync(_options.StopTimeout);

        /// <summary>
        /// Stops as <see cref="StopAsync()"/> does, within <paramref name="timeout"/>: connections
        /// still busy then (behind a full Wait-mode queue, or a peer that doesn't read) are reset.
        /// False when some had to be reset. A second call returns the first one's task.
        /// </summary>
        public Task<bool> StopAsync(TimeSpan timeout)
        {
            lock (_stopLock)
            {
                return _stopTask ?? (_stopTask = StopCoreAsync(timeout));
            }
        }

        private async Task<bool> StopCoreAsync(TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            lock (_stopLock)
            {
                Volatile.Write(ref _state, (int)ServerState.Stopping);
            }

            lock (_held)
            {
                // Held by a Timeout-mode suspend and never served.
                foreach (var socket in _held) socket.Dispose();
                _held.Clear();
            }

            SignalResumed();

            _idleTimer?.Dispose();
            _listener.Dispose();
            // A relay's faults end with it: no latency or Timeout hold keeps the stop waiting.
            Faults?.Clear();
            UnixListener.Remove(_options.UnixSocketPath);
            await _acceptLoop.ConfigureAwait(false);

            // Every connection closes gracefully (no new work; the batch in hand answered; FIN;
            // read, queueing, until the peer's FIN), all within the one timeout; those that
            // can't are reset at it. A relay's target sides close the same way, beside them.
            var connections = _connections.Values.ToList();
            var closing = connections.ToList();
            if (_handler is RelayHandler relay) closing.AddRange(relay.TargetConnections);
            var left = timeout - clock.Elapsed;
            if (left < TimeSpan.Zero) left = TimeSpan.Zero;
            var closes = closing.Select(c => c.CloseAsync(left)).ToList();
            bool graceful = (await Task.WhenAll(closes).ConfigureAwait(false)).All(closed => closed);

            // A close returns once its connection ended (or was reset and is ending): wait for
            // the last of them briefly, but never for a handler's own connection when that
            // handler is what stops the server (it closes once the handler returns).
            var all = Task.WhenAll(connections.Where(c => !TcpConnection.IsHandlerOf(c)).Select(c => c.Completion));
            if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromMilliseconds(200))).ConfigureAwait(false) != all)
            {
                foreach (var connection in connections)
                {
                    if (!connection.Completion.IsCompleted && !TcpConnection.IsHandlerOf(connection)) connection.Abort(reset: true);
                }
            }

            (_handler as IDisposable)?.Dispose();
            Queue.Complete();
            Volatile.Write(ref _state, (int)ServerState.Stopped);
            Diagnostics.PSTcpMetrics.ServerStopped(this);
            return graceful;
        }

        public override string ToString() => $"{Name} ({LocalEndPoint}, {State})";
    }
}

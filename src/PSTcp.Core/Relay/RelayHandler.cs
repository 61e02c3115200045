using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// The handler of a relay server: each accepted connection (the client) gets a connection of its
    /// own to the target, and every read of one side is sent to the other before the next read
    /// (backpressure both ways: a slow target slows the client, and the other way round). A FIN
    /// from one side becomes a half-close of the other; the pair closes once both sides ended.
    /// Framing and queueing of both directions is the receive loop's (the server's queue, with the
    /// server's and the target connection's <see cref="TcpConnection.Direction"/>).
    /// </summary>
    public sealed class RelayHandler : LineHandler
    {
        private readonly ConcurrentDictionary<TcpConnection, RelayPair> _pairs = new ConcurrentDictionary<TcpConnection, RelayPair>();

        /// <param name="targetHost">Where every client is forwarded to.</param>
        /// <param name="targetPort">The target's port.</param>
        /// <param name="targetOptions">The target connections' options (TLS, PROXY header, framing of TargetToClient messages).</param>
        /// <param name="connectTimeout">How long a connection to the target may take; the client is closed when it fails.</param>
        /// <param name="queueMessages">Whether TargetToClient messages go into the relay server's queue.</param>
        public RelayHandler(string targetHost, int targetPort, ConnectionOptions targetOptions, TimeSpan connectTimeout, bool queueMessages)
        {
            if (targetOptions?.UnixSocketPath == null)
            {
                // A Unix-socket target (targetOptions.UnixSocketPath) needs no host or port.
                if (string.IsNullOrEmpty(targetHost)) throw new ArgumentException("A relay needs a target host.", nameof(targetHost));
                if (targetPort < 1 || targetPort > 65535) throw new ArgumentOutOfRangeException(nameof(targetPort), "TargetPort must be 1..65535.");
            }

            if (connectTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(connectTimeout), "The connect timeout must be positive.");
            TargetHost = targetHost;
            TargetPort = targetPort;
            TargetOptions = targetOptions ?? throw new ArgumentNullException(nameof(targetOptions));
            ConnectTimeout = connectTimeout;
            QueueMessages = queueMessages;
        }

        public string TargetHost { get; }

        public int TargetPort { get; }

        public ConnectionOptions TargetOptions { get; }

        public TimeSpan ConnectTimeout { get; }

        public bool QueueMessages { get; }

        /// <summary>Where clients are forwarded, as host:port ([v6]:port), or unix:path.</summary>
        public string Target => TargetOptions.UnixSocketPath != null ? "unix:" + TargetOptions.UnixSocketPath : (TargetHost.IndexOf(':') >= 0 && !TargetHost.StartsWith("[", StringComparison.Ordinal) ? "[" + TargetHost + "]" : TargetHost) + ":" + TargetPort;

        /// <summary>The faults on this relay (Add-TcpFault; RelayFaults.cs).</summary>
        public RelayFaults Faults { get; } = new RelayFaults();

        /// <summary>How many clients were closed because their target connection failed.</summary>
        public long TargetFailures => Interlocked.Read(ref _targetFailures);

        private long _targetFailures;

        /// <summary>The target connections open now, one per client.</summary>
        public IReadOnlyList<TcpConnection> TargetConnections
        {
            get
            {
                var list = new List<TcpConnection>();
                foreach (var pair in _pairs.Values)
                {
                    var target = pair.TargetIfConnected;
                    if (target != null) list.Add(target);
                }

                return list;
            }
        }

        public override bool WantsData => true;

        internal override bool MayCloseItsConnection => false;

        // The bytes are forwarded by OnDataAsync; messages are built only for the queue.
        public override bool NeedsMessages => false;

        internal override bool RunsInline => true;

        public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken) => default;

        /// <summary>Record and replay (-RecordPath, Recording.cs): sees every client event first and may answer a client itself. Set before the server starts.</summary>
        public RelayRecorder Recorder { get; set; }

        public override void OnConnected(TcpConnection connection)
        {
            // Recording hook: a replayed client never reaches the target (or only once its first message matched nothing).
            if (Recorder != null && !Recorder.OnClientConnected(connection)) return;
            StartPair(connection);
        }

        internal void StartPair(TcpConnection connection)
        {
            var pair = new RelayPair(this, connection);
            _pairs[connection] = pair;
            pair.Start();
        }

        public override ValueTask OnDataAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            Recorder != null ? Recorder.OnClientDataAsync(this, connection, data, cancellationToken) : ForwardFromClientAsync(connection, data, cancellationToken);

        internal ValueTask ForwardFromClientAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            _pairs.TryGetValue(connection, out var pair) ? pair.ForwardToTargetAsync(data, cancellationToken) : default;

        public override ValueTask OnReceiveEndedAsync(TcpConnection connection) =>
            Recorder != null ? Recorder.OnClientEndedAsync(this, connection) : ClientEndedAsync(connection);

        internal ValueTask ClientEndedAsync(TcpConnection connection) =>
            _pairs.TryGetValue(connection, out var pair) ? pair.ClientEndedAsync() : default;

        public override void OnDisconnected(TcpConnection connection)
        {
            if (_pairs.TryRemove(connection, out var pair))
            {
                pair.ClientClosed();
            }

            Recorder?.OnClientClosed(connection); // recording hook: writes the file
        }

        internal void CountTargetFailure() => Interlocked.Increment(ref _targetFailures);
    }

    /// <summary>One client and its target connection.</summary>
    internal sealed class RelayPair
    {
        private readonly RelayHandler _relay;
        private readonly CancellationTokenSource _closed = new CancellationTokenSource();
        private readonly TaskCompletionSource<bool> _clientEnded = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<bool> _targetEnded = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task<TcpConnection> _target;

        public RelayPair(RelayHandler relay, TcpConnection client)
        {
            _relay = relay;
            Client = client;
            Faults = new RelayPairFaults(relay.Faults, this);
        }

        /// <summary>This pair's side of the relay's faults (RelayFaults.cs).</summary>
        internal RelayPairFaults Faults { get; }

        public TcpConnection Client { get; }

        public TcpConnection TargetIfConnected => _target != null && _target.Status == TaskStatus.RanToCompletion ? _target.Result : null;

        public void Start()
        {
            _target = ConnectAsync();
            // A failed connect is recorded in ConnectAsync; nobody may await it when the client sends nothing.
            _ = _target.ContinueWith(t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        private async Task<TcpConnection> ConnectAsync()
        {
            var server = Client.Server;
            try
            {
                // The PROXY header (with -SendProxyProtocol) names the client and the relay address it reached.
                var target = await TcpConnection.ConnectAsync(_relay.TargetHost, _relay.TargetPort, _relay.TargetOptions, _relay.ConnectTimeout,
                    _closed.Token, new RelayTargetHandler(this), _relay.QueueMessages ? server?.Queue : null,
                    MessageDirection.TargetToClient, Client.RemoteEndPoint as IPEndPoint, Client.LocalEndPoint as IPEndPoint, _relay.QueueMessages).ConfigureAwait(false);
                if (_closed.IsCancellationRequested)
                {
                    // The client left while we connected.
                    target.Abort();
                }

                return target;
            }
            catch (Exception e)
            {
                if (!_closed.IsCancellationRequested)
                {
                    _relay.CountTargetFailure();
                    _relay.Recorder?.OnTargetFailed(Client); // recording hook: nothing to record
                    var error = e as TcpException ?? new TcpException(TcpErrorKind.ConnectionRefused, e.Message, e);
                    server?.RecordError(new TcpException(error.Kind,
                        $"The relay's target {_relay.Target} failed for client {Client.RemoteEndPoint}: {error.Message}", error), Client);
                    Client.Abort();
                }

                throw;
            }
        }

        public async ValueTask ForwardToTargetAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            var target = await _target.ConfigureAwait(false);
            // Fault hook (Add-TcpFault): with faults on the relay, they forward the read.
            if (Faults.Any) { await Faults.ToTargetAsync(target, data, cancellationToken).ConfigureAwait(false); return; }
            await Forward(target, data, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask ForwardToClientAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _relay.Recorder?.OnTargetData(Client, data); // recording hook
            return Faults.Any ? Faults.ToClientAsync(data, cancellationToken) : Forward(Client, data, cancellationToken); // fault hook
        }

        /// <summary>The target connection opened: its messages carry the client's conversation id; the faults know it.</summary>
        public void TargetOpened(TcpConnection target)
        {
            target.ConversationId = Client.ConversationId;
            Faults.Target = target;
        }

        /// <summary>
        /// Sends to one side; <paramref name="cancellationToken"/> is the other side's abort. A send
        /// stuck on a side that stopped reading holds the other side's receive loop, so when that
        /// side is reset (a close's or a stop's timeout), the stuck side is reset too: both
        /// sockets go, and neither loop waits on the other.
        /// </summary>
        private static ValueTask Forward(TcpConnection to, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            var send = to.SendAsync(data, cancellationToken);
            return send.IsCompleted ? send : ForwardSlowAsync(to, send, cancellationToken);
        }

        private static async ValueTask ForwardSlowAsync(TcpConnection to, ValueTask send, CancellationToken cancellationToken)
        {
            using (cancellationToken.Register(() => to.Abort(reset: true)))
            {
                await send.ConfigureAwait(false);
            }
        }

        /// <summary>The client sent FIN: pass it on, then stay open for the target's answer until it ends too.</summary>
        public async ValueTask ClientEndedAsync()
        {
            _clientEnded.TrySetResult(true);
            TcpConnection target;
            try
            {
                target = await _target.ConfigureAwait(false);
            }
            catch
            {
                return;
            }

            await Faults.SlowCloseAsync(MessageDirection.ClientToTarget).ConfigureAwait(false); // fault hook: SlowClose
            await target.HalfCloseAsync().ConfigureAwait(false);
            await Task.WhenAny(_targetEnded.Task, WhileClientStaysAsync()).ConfigureAwait(false);
        }

        /// <summary>
        /// Completes when the client's side is being closed (an abort, a stop timeout) or the relay
        /// stops. A receive-ended hook gets no cancellation token, so without this a target that
        /// never finishes its answer would hold the client, and the relay's stop, forever.
        /// </summary>
        private async Task WhileClientStaysAsync()
        {
            var server = Client.Server;
            while (!_targetEnded.Task.IsCompleted && Client.State < ConnectionState.Closing
                && (server == null || server.State == ServerState.Running))
            {
                await Task.WhenAny(_targetEnded.Task, Task.Delay(100)).ConfigureAwait(false);
            }
        }

        /// <summary>The target sent FIN: pass it on to the client, then wait for the client to end.</summary>
        public async ValueTask TargetEndedAsync()
        {
            _targetEnded.TrySetResult(true);
            _relay.Recorder?.OnTargetEnded(Client); // recording hook
            await Faults.SlowCloseAsync(MessageDirection.TargetToClient).ConfigureAwait(false); // fault hook: SlowClose
            await Client.HalfCloseAsync().ConfigureAwait(false);
            await _clientEnded.Task.ConfigureAwait(false);
        }

        /// <summary>The client's connection closed (both ended, a reset, a limit, or the relay stopping): close the target too.</summary>
        public void ClientClosed()
        {
            _clientEnded.TrySetResult(true);
            bool bothEnded = _targetEnded.Task.IsCompleted;
            _closed.Cancel();
            var target = TargetIfConnected;
            if (target != null && !bothEnded && target.State < ConnectionState.Closing)
            {
                Faults.CloseAfterSlowClose(MessageDirection.ClientToTarget, () => target.CloseAsync(TimeSpan.FromSeconds(1))); // fault hook: SlowClose
            }
        }

        /// <summary>The target's connection closed: a client still open loses its other half, so it closes.</summary>
        public void TargetClosed(TcpConnection target)
        {
            _relay.Recorder?.OnTargetClosed(Client, target); // recording hook: a reset is recorded
            _targetEnded.TrySetResult(true);
            if (Client.State < ConnectionState.Closing && !_clientEnded.Task.IsCompleted)
            {
                Faults.CloseAfterSlowClose(MessageDirection.TargetToClient, () => Client.CloseAsync(TimeSpan.FromSeconds(1))); // fault hook: SlowClose
            }
        }
    }

    /// <summary>The target side of one relay pair: its reads go to the client.</summary>
    internal sealed class RelayTargetHandler : LineHandler
    {
        private readonly RelayPair _pair;

        public RelayTargetHandler(RelayPair pair) => _pair = pair;

        public override bool WantsData => true;

        public override bool NeedsMessages => false;

        internal override bool RunsInline => true;
        internal override bool MayCloseItsConnection => false;

        public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken) => default;

        public override ValueTask OnDataAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            _pair.ForwardToClientAsync(data, cancellationToken);

        public override void OnConnected(TcpConnection connection) => _pair.TargetOpened(connection);

        public override ValueTask OnReceiveEndedAsync(TcpConnection connection) => _pair.TargetEndedAsync();

        public override void OnDisconnected(TcpConnection connection) => _pair.TargetClosed(connection);
    }
}

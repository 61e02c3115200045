using System;
using System.Buffers;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer -Conversation: runs a script once per accepted connection, in a runspace of
    /// its own (a pool of at most -ThrottleLimit; further connections wait for one), with the
    /// connection as its first argument. Inside it the ordinary cmdlets work on $Connection:
    /// Receive-TcpMessage reads the connection's own messages, in order, from a per-connection
    /// queue (lossless: a conversation that doesn't read holds its peer back through TCP). What
    /// the script outputs is sent as it is written, framed. When it returns, the connection is
    /// closed gracefully. The messages are queued on the server too, for consumers and assertions.
    /// </summary>
    /// <remarks>
    /// A waiting or sleeping conversation holds only its own runspace and thread, never a socket
    /// thread or a handler worker another one needs.
    /// </remarks>
    internal sealed class ConversationLineHandler : LineHandler, IDisposable
    {
        private readonly string _script;
        private readonly HandlerOrigin _origin;
        private readonly object[] _arguments;
        private readonly byte[] _newLine;
        private readonly int _queueCapacity;
        private readonly RunspacePool _pool;
        private readonly ConditionalWeakTable<TcpConnection, Conversation> _conversations = new ConditionalWeakTable<TcpConnection, Conversation>();
        private readonly HashSet<Conversation> _running = new HashSet<Conversation>();
        private volatile bool _disposed;

        public ConversationLineHandler(string script, HandlerOrigin origin, object[] arguments, IDictionary<string, object> variables,
            int throttleLimit, string modulePath, byte[] newLine, int queueCapacity)
        {
            _script = script;
            _origin = origin;
            _arguments = arguments ?? Array.Empty<object>();
            _newLine = newLine;
            _queueCapacity = queueCapacity;
            var state = InitialSessionState.CreateDefault2();
            if (modulePath != null) state.ImportPSModule(new[] { modulePath });
            foreach (var pair in variables)
            {
                state.Variables.Add(new SessionStateVariableEntry(pair.Key, pair.Value, "A $using: value captured when the server started."));
            }

            _pool = RunspaceFactory.CreateRunspacePool(state);
            _pool.SetMaxRunspaces(throttleLimit);
            _pool.SetMinRunspaces(1);
            _pool.Open();
        }

        /// <summary>The per-connection message source of a connection in a conversation, or null.</summary>
        public static IMessageSource SourceFor(TcpConnection connection) =>
            connection != null && Registry.TryGetValue(connection, out var conversation) ? conversation.Source : null;

        /// <summary>Tells a connection's conversation (if any) that the connection is being closed or reset by a cmdlet.</summary>
        public static void NotifyClosing(TcpConnection connection)
        {
            if (connection != null && Registry.TryGetValue(connection, out var conversation)) conversation.Closing.TrySetResult(true);
        }

        // Every conversation of every server, for the cmdlets that get only the connection.
        private static readonly ConditionalWeakTable<TcpConnection, Conversation> Registry = new ConditionalWeakTable<TcpConnection, Conversation>();

        public override void OnConnected(TcpConnection connection)
        {
            var conversation = new Conversation(this, connection);
            _conversations.Add(connection, conversation);
            Registry.Add(connection, conversation);
            lock (_running)
            {
                if (_disposed) return;
                _running.Add(conversation);
            }

            conversation.Start();
        }

        // Hands messages to the conversation's queue (waiting, never blocking).
        internal override bool RunsInline => true;

        public override async ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
        {
            if (!_conversations.TryGetValue(connection, out var conversation)) return;
            for (int i = 0; i < messages.Count; i++)
            {
                // Wait mode: a conversation that doesn't read pauses its connection, nothing is lost.
                await conversation.Queue.WriteAsync(messages[i], cancellationToken).ConfigureAwait(false);
            }
        }

        public override async ValueTask OnReceiveEndedAsync(TcpConnection connection)
        {
            if (!_conversations.TryGetValue(connection, out var conversation)) return;
            conversation.Queue.Complete();
            // The peer is done sending, but the conversation may still answer: the connection
            // stays open until it returns (or a cmdlet closes it).
            await Task.WhenAny(conversation.Done, conversation.Closing.Task).ConfigureAwait(false);
        }

        public override void OnDisconnected(TcpConnection connection)
        {
            if (!_conversations.TryGetValue(connection, out var conversation)) return;
            conversation.Queue.Complete();
            // The peer is gone: a conversation still running has no one to talk to.
            conversation.Stop();
        }

        public void Dispose()
        {
            List<Conversation> running;
            lock (_running)
            {
                _disposed = true;
                running = new List<Conversation>(_running);
            }

            foreach (var conversation in running) conversation.Stop();
            try { _pool.Close(); }
            catch (Exception e) when (e is InvalidRunspacePoolStateException || e is ObjectDisposedException) { }
            _pool.Dispose();
        }

        private void Finished(Conversation conversation)
        {
            lock (_running) _running.Remove(conversation);
        }

        /// <summary>One connection's run of the script.</summary>
        private sealed class Conversation
        {
            private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);
            private static readonly TimeSpan ByteRunEnd = TimeSpan.FromMilliseconds(50);
            private readonly ConversationLineHandler _owner;
            private readonly TcpConnection _connection;
            private readonly TaskCompletionSource<bool> _done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            private readonly PSDataCollection<PSObject> _output = new PSDataCollection<PSObject>();
            private readonly object _sendLock = new object();
            private readonly HandlerOutput _pending;
            private readonly Timer _byteTimer;
            private PowerShell _powerShell;
            private volatile bool _stopped;

            public Conversation(ConversationLineHandler owner, TcpConnection connection)
            {
                _owner = owner;
                _connection = connection;
                Queue = new MessageQueue(owner._queueCapacity, QueueFullMode.Wait);
                Source = new ConversationSource(connection, Queue);
                _pending = new HandlerOutput(connection, owner._newLine);
                _byteTimer = new Timer(_ => Flush(endOfBytes: true), null, Timeout.Infinite, Timeout.Infinite);
            }

            public MessageQueue Queue { get; }

            public IMessageSource Source { get; }

            public Task Done => _done.Task;

            /// <summary>Set when a cmdlet closes or resets the connection (from inside the conversation or not).</summary>
            public TaskCompletionSource<bool> Closing { get; } = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

            public void Start()
            {
                var ps = PowerShell.Create();
                ps.RunspacePool = _owner._pool;
                ps.AddScript(_owner._script, useLocalScope: true).AddArgument(_connection);
                foreach (var argument in _owner._arguments) ps.AddArgument(argument);
                _output.DataAdded += (_, e) => Flush(endOfBytes: false);
                ps.Streams.Error.DataAdded += (_, e) =>
                {
                    var record = ps.Streams.Error[e.Index];
                    if (!_stopped) Report($"wrote an error: {record}", record, record.Exception);
                };
                _powerShell = ps;
                try
                {
                    ps.BeginInvoke<PSObject, PSObject>(null, _output, null, Completed, null);
                }
                catch (Exception e) when (e is InvalidRunspacePoolStateException || e is InvalidOperationException || e is ObjectDisposedException)
                {
                    // The server is stopping.
                    ps.Dispose();
                    _done.TrySetResult(false);
                    _owner.Finished(this);
                }
            }

            public void Stop()
            {
                _stopped = true;
                try { _powerShell?.BeginStop(null, null); }
                catch (Exception e) when (e is ObjectDisposedException || e is InvalidOperationException) { }
            }

            private void Completed(IAsyncResult result)
            {
                var ps = _powerShell;
                try
                {
                    ps.EndInvoke(result);
                }
                catch (Exception e) when (!(e is PipelineStoppedException) && !_stopped)
                {
                    // throw, exit, a terminating error: reported with where it happened.
                    var record = (e as IContainsErrorRecord)?.ErrorRecord;
                    Report(e.GetType().Name == "ExitException" ? "called exit" : "failed: " + (record?.ToString() ?? e.Message), record, e);
                }
                catch (Exception)
                {
                    // Stopped with the server, or because the peer left.
                }

                _ = FinishAsync(ps);
            }

            private async Task FinishAsync(PowerShell ps)
            {
                try
                {
                    Flush(endOfBytes: true);
                    _byteTimer.Dispose();
                    ps.Dispose();
                    if (!_stopped && (_connection.State == ConnectionState.Open || _connection.State == ConnectionState.HalfClosed))
                    {
                        // The conversation returned: the connection ends gracefully.
                        _done.TrySetResult(true);
                        await _connection.CloseAsync(CloseTimeout).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is TcpException || e is ObjectDisposedException || e is InvalidOperationException)
                {
                    // Closed meanwhile.
                }
                finally
                {
                    _done.TrySetResult(true);
                    lock (_sendLock) _pending.Dispose();
                    _owner.Finished(this);
                }
            }

            /// <summary>
            /// Sends what the script wrote, as it is written (on the script's own thread). A run of
            /// [byte] outputs (an unrolled byte[]) is one message, sent when something else is
            /// written, the script returns, or no further byte came for a moment.
            /// </summary>
            private void Flush(bool endOfBytes)
            {
                lock (_sendLock)
                {
                    bool bytesOnly = true;
                    foreach (var item in _output.ReadAll())
                    {
                        if (item == null) continue;
                        bytesOnly &= item.BaseObject is byte;
                        try
                        {
                            _pending.Write(item);
                        }
                        catch (ArgumentException e)
                        {
                            Report($"wrote output that can't be sent: {e.Message}", null, e);
                        }
                    }

                    if (!endOfBytes && bytesOnly && !_pending.IsEmpty && _pending.Count == 0 && !_pending.Ended)
                    {
                        // Only bytes so far: more of the same array may follow.
                        _byteTimer.Change(ByteRunEnd, Timeout.InfiniteTimeSpan);
                        return;
                    }

                    try
                    {
                        _pending.SendAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                    }
                    catch (Exception e) when (e is TcpException || e is ObjectDisposedException || e is OperationCanceledException)
                    {
                        // The peer left: the conversation finds out at its next receive or send.
                    }
                    catch (ArgumentException e)
                    {
                        Report($"wrote output that can't be sent: {e.Message}", null, e);
                    }
                    finally
                    {
                        _pending.Clear();
                    }
                }
            }

            private void Report(string what, ErrorRecord record, Exception inner) =>
                HandlerFailures.Record(_connection, new TcpException(TcpErrorKind.HandlerFailed,
                    $"The conversation of connection {_connection.Id} from {_connection.RemoteEndPoint} {what}{_owner._origin.Where(record)}", inner));
        }

        /// <summary>A conversation's connection as a source: its own messages, in order.</summary>
        private sealed class ConversationSource : IMessageSource
        {
            private readonly TcpConnection _connection;

            public ConversationSource(TcpConnection connection, MessageQueue queue)
            {
                _connection = connection;
                Queue = queue;
            }

            public string Name => _connection.Name;

            public MessageQueue Queue { get; }

            public TcpException Error => _connection.Error;

            public event EventHandler<TcpErrorEventArgs> ErrorReported { add { } remove { } }

            public event EventHandler<TcpConnectionEventArgs> ConnectionChanged { add { } remove { } }
        }
    }
}

using System;
using System.Buffers;
using System.Collections.Generic;
using System.Management.Automation;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using PSTcp.Framing;

namespace PSTcp.Commands
{
    /// <summary>
    /// Enter-TcpSession: an interactive session like ncat's. Lines typed, read from redirected
    /// standard input or piped in are sent; received messages are printed as they arrive. One
    /// loop on the pipeline thread waits for "lines to send", "a message arrived", "the send
    /// finished", "the peer closed" and Ctrl+C, so every write happens on this thread and a
    /// peer that pushes back never deadlocks the session against its own unread messages.
    /// </summary>
    [Cmdlet(VerbsCommon.Enter, "TcpSession", DefaultParameterSetName = ToHost, SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Enter-TcpSession.md")]
    [OutputType(typeof(TcpMessage))]
    public sealed class EnterTcpSessionCommand : ClientFramingCmdlet, IDisposable
    {
        private const string ToHost = "HostName";
        private const string OnConnection = "Connection";
        private const string Listening = "Listen";

        // Lines taken together are sent together: one send per burst, not per line.
        private const int MaxBatchChars = 64 * 1024;

        // A terminal gives no event for "a key was pressed": between keys the loop still wakes
        // on messages, the peer closing and Ctrl+C, and looks at the keyboard this often.
        private static readonly TimeSpan KeyPollInterval = TimeSpan.FromMilliseconds(30);

        private static readonly TimeSpan DefaultLinger = TimeSpan.FromSeconds(5);
        private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(5);

        private TcpConnection _connection;
        private bool _ownsConnection;
        private TcpServer _server;
        private Task _ended;
        private MessageQueue _reader;
        private Task<bool> _messageWait;
        private Task _send;
        private int _sending;
        private Task _close;
        private SessionInput _input = SessionInput.None.Instance;
        private bool _pipelineInput;
        private bool _finished;
        private bool _errorReported;
        private long _received;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ToHost)]
        [Alias("ComputerName", "Host")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, Position = 1, ParameterSetName = ToHost)]
        [Parameter(Mandatory = true, ParameterSetName = Listening)]
        [ValidateRange(0, 65535)]
        public int Port { get; set; }

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = OnConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        /// <summary>Listen on -Port for one client, then stop listening and talk to it.</summary>
        [Parameter(Mandatory = true, ParameterSetName = Listening)]
        public SwitchParameter Listen { get; set; }

        [Parameter(ParameterSetName = Listening)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public string Address { get; set; } = "127.0.0.1";

        /// <summary>Lines to send; piped lines are sent as they come, and their end is the end of input.</summary>
        [Parameter(ValueFromPipeline = true)]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[] Line { get; set; }

        [Parameter]
        [ValidateNotNull]
        [ArgumentCompleter(typeof(NewLineCompleter))]
        public string NewLine { get; set; } = "\n";

        /// <summary>-HostName: the connect timeout (default 10 s). -Listen: how long to wait for the client (default: until Ctrl+C).</summary>
        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = Listening)]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; }

        /// <summary>After the end of input: how long to keep receiving while waiting for the peer to close.</summary>
        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = Listening)]
        [TimeSpanTransformation(AllowZero = true)]
        public TimeSpan Linger { get; set; } = DefaultLinger;

        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = Listening)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        /// <summary>Connect through this proxy: socks5://, socks4a://, socks4:// or http:// (CONNECT).</summary>
        [Parameter(ParameterSetName = ToHost)]
        [ValidateNotNull]
        public Uri Proxy { get; set; }

        /// <summary>The proxy's user name and password.</summary>
        [Parameter(ParameterSetName = ToHost)]
        [Credential]
        public PSCredential ProxyCredential { get; set; }

        /// <summary>Write received messages to the pipeline as TcpMessage objects instead of printing their text.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>Print the peer's control characters as they are (escape sequences reach the terminal), not as ^[-style text.</summary>
        [Parameter]
        public SwitchParameter RawOutput { get; set; }

        /// <summary>Received messages shown as hex dumps (offset, bytes, ASCII); without framing parameters the session is Raw.</summary>
        [Parameter]
        public SwitchParameter Hex { get; set; }

        protected override FramingKind DefaultFraming => Hex ? FramingKind.Raw : FramingKind.Line;

        private bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        protected override void BeginProcessing()
        {
            // Time parameters: seconds as numbers, zero (-Timeout) and overflow refused.
            base.BeginProcessing();
            _pipelineInput = MyInvocation.ExpectingInput || Bound(nameof(Line));
            // -WhatIf: no port bound, no connection opened, nothing sent.
            if (Connection == null && !ShouldProcess(Listen ? $"{Address}:{Port}" : $"{HostName}:{Port}",
                Listen ? "Listen for one TCP client and talk to it" : "Open a TCP connection and talk to it"))
            {
                _finished = true;
                return;
            }

            if (Listen || Connection != null)
            {
                Client.RefuseWith(this, "they apply when the session connects to -HostName.");
            }

            if (Connection != null && HasFramingParameters)
            {
                ThrowTcpError(new ArgumentException(
                    "The framing parameters apply when the session opens its connection; a -Connection keeps the framing it was opened with.", nameof(Framing)), Connection);
            }

            if (Listen) AcceptOne();
            else if (Connection != null) Attach(Connection);
            else Open();
        }

        protected override void ProcessRecord()
        {
            if (Line == null || Line.Length == 0 || _finished) return;
            // One send in flight at a time; while it runs, messages keep being printed.
            RunUntil(() => _send == null);
            if (_finished) return;
            StartSend(new List<string>(Line));
            PrintAvailable();
        }

        protected override void EndProcessing()
        {
            if (_finished) return;
            if (!_pipelineInput)
            {
                _input = Console.IsInputRedirected ? new RedirectedInput() : (SessionInput)new TerminalInput(Host.UI);
                if (_input is TerminalInput) WriteBanner();
            }

            RunUntil(() => false);
        }

        private void Open()
        {
            if (Port == 0)
            {
                ThrowTcpError(new ArgumentException("Port must be between 1 and 65535 to connect.", nameof(Port)), Port);
            }

            var options = new ConnectionOptions
            {
                Name = "Session",
                Encoding = Encoding,
                // Lossless: a session that prints slowly makes the peer wait instead of losing lines.
                QueueFullMode = QueueFullMode.Wait,
            };
            ApplyFraming(options);
            // TLS (client certificates, trust, pins, ALPN, versions), -Proxy, the local end point.
            Client.WithProxy(Proxy, ProxyCredential).Apply(this, options);
            var timeout = Bound(nameof(Timeout)) ? Timeout : ConnectTcpEndpointCommand.DefaultTimeout;
            var connection = ConnectTcpEndpointCommand.Connect(this, HostName, Port, timeout, options, 0, TimeSpan.Zero);
            _ownsConnection = true;
            Attach(connection);
        }

        private void AcceptOne()
        {
            var handler = new OneClientHandler();
            var options = new TcpServerOptions
            {
                Name = "Session",
                Address = Address,
                Port = Port,
                MaxConnections = 1,
                Encoding = Encoding,
                QueueFullMode = QueueFullMode.Wait,
            };
            ApplyFraming(options);
            try
            {
                _server = TcpServer.Start(options, handler);
            }
            catch (Exception e) when (e is TcpException || e is ArgumentException)
            {
                ThrowTerminatingError(TcpErrors.BindFailed(e, $"{Address}:{Port}", Address, Port, null));
            }

            WriteVerbose($"Listening on {_server.LocalEndPoint}; waiting for one client.");
            if (!Console.IsInputRedirected && !_pipelineInput)
            {
                Host.UI.WriteLine($"Listening on {_server.LocalEndPoint}; waiting for one client (Ctrl+C cancels).");
            }

            var limit = Bound(nameof(Timeout)) ? Timeout : System.Threading.Timeout.InfiniteTimeSpan;
            if (!Wait(WaitAsync(handler.Accepted, limit, Cancellation)))
            {
                ThrowTerminatingError(TcpErrors.From(TcpErrorKind.ConnectTimeout,
                    $"No client connected to {_server.LocalEndPoint} within {limit.TotalSeconds:0.###} s.", _server));
            }

            // One client only: MaxConnections = 1 refuses others while it is here, and the
            // handler turns away any that come after it left, until the server stops.
            _ownsConnection = true;
            _connection = handler.Accepted.Result;
            _ended = handler.Disconnected;
            _reader = _server.Queue;
            WriteVerbose($"Client connected from {_connection.RemoteEndPoint}.");
        }

        private void Attach(TcpConnection connection)
        {
            _connection = connection;
            _ended = connection.Completion;
            _reader = connection.Queue;
            WriteVerbose($"Session with {connection.RemoteEndPoint} from {connection.LocalEndPoint} ({connection.Name}, Id {connection.Id}).");
        }

        private void WriteBanner()
        {
            var eof = Environment.OSVersion.Platform == PlatformID.Win32NT ? "Ctrl+Z or Ctrl+D" : "Ctrl+D";
            Host.UI.WriteLine($"Connected to {_connection.RemoteEndPoint}. Type lines to send; {eof} on an empty line ends the session, Ctrl+C aborts it.");
        }

        /// <summary>
        /// The session loop: prints messages, sends what the input has, and waits for the next
        /// thing to happen, until <paramref name="done"/> holds or the session is finished.
        /// </summary>
        private void RunUntil(Func<bool> done)
        {
            var lines = new List<string>();
            var waits = new List<Task>(5);
            while (!_finished)
            {
                PrintAvailable();
                if (_send != null && _send.IsCompleted) CompleteSend();
                if (_finished || done()) return;
                if (_ended.IsCompleted)
                {
                    // Everything the peer sent is queued by the time the connection has ended.
                    PrintAvailable();
                    Finish(_close != null ? "the peer closed after the end of input" : "the peer closed the connection");
                    return;
                }

                if (_send == null && _close == null)
                {
                    lines.Clear();
                    _input.TakeLines(lines, MaxBatchChars);
                    if (lines.Count > 0) StartSend(lines);
                    else if (_input.Ended) EndOfInput();
                    if (_finished) return;
                }

                waits.Clear();
                waits.Add(_ended);
                var message = WaitForMessage();
                // A message that came after PrintAvailable: print it now rather than wait for
                // something else to happen (the wait that says so has already completed).
                if (message == null && _messageWait.Status == TaskStatus.RanToCompletion && _messageWait.Result) continue;
                if (message != null) waits.Add(message);
                if (_send != null) waits.Add(_send);
                var input = _send == null && _close == null ? _input.WaitForLines(Cancellation) : null;
                if (input != null) waits.Add(input);
                bool poll = _input is TerminalInput && _send == null && _close == null;
                try
                {
                    Task.WaitAny(waits.ToArray(), poll ? (int)KeyPollInterval.TotalMilliseconds : System.Threading.Timeout.Infinite, Cancellation);
                }
                catch (OperationCanceledException)
                {
                    throw new PipelineStoppedException();
                }
            }
        }

        /// <summary>A task that completes when a message may be waiting; null once the queue has ended.</summary>
        private Task WaitForMessage()
        {
            if (_messageWait == null || (_messageWait.IsCompleted && _messageWait.Status == TaskStatus.RanToCompletion && _messageWait.Result))
            {
                _messageWait = _reader.WaitToReadAsync(Cancellation).AsTask();
            }

            return _messageWait.IsCompleted ? null : _messageWait;
        }

        private void PrintAvailable()
        {
            bool began = false;
            while (_reader.TryRead(out var message))
            {
                // -Listen reads its server's queue: only the one client's messages are the session's.
                if (message.ConnectionId != _connection.Id) continue;
                _received++;
                if (!began) { _input.BeginOutput(); began = true; }
                if (PassThru) WriteObject(message);
                else if (Hex)
                {
                    foreach (var line in HexDump.Lines(message.Data)) Host.UI.WriteLine(line);
                }
                else Host.UI.WriteLine(RawOutput ? message.Text : ControlCharacters.Escape(message.Text));
            }

            if (began) _input.EndOutput();
        }

        private void StartSend(List<string> lines)
        {
            var encoding = _connection.Encoding;
            var framing = _connection.Framing;
            var newLine = encoding.GetBytes(NewLine);
            var output = new FrameWriter();
            int count = 0;
            foreach (var line in lines)
            {
                var payload = encoding.GetBytes(line ?? string.Empty);
                if (framing.Kind == FramingKind.Line || framing.Kind == FramingKind.Raw)
                {
                    // As typed, ended by -NewLine (Raw too: what is typed is what is sent).
                    output.Write(payload);
                    output.Write(newLine);
                }
                else
                {
                    // One message, framed as the session receives them (a length prefix, a
                    // delimiter, ...), as Send-TcpMessage frames what it sends.
                    try
                    {
                        framing.WriteFrame(payload, output);
                    }
                    catch (ArgumentException e)
                    {
                        // A line the framing refuses (a wrong fixed length, say) is not sent; the others are.
                        WriteTcpError(e, line);
                        continue;
                    }
                }

                count++;
            }

            if (count == 0) return;
            _sending = count;
            _send = _connection.SendAsync(output.Written, Cancellation).AsTask();
        }

        private void CompleteSend()
        {
            var send = _send;
            _send = null;
            if (send.Status == TaskStatus.RanToCompletion)
            {
                _connection.CountMessagesSent(_sending);
                return;
            }

            if (Cancellation.IsCancellationRequested) throw new PipelineStoppedException();
            // The peer went away under the send: its own error, if it has one, says why.
            var error = send.Exception?.GetBaseException();
            if (_connection.Error == null && error != null)
            {
                _errorReported = true;
                WriteTcpError(new TcpException(TcpErrorKind.ConnectionClosed, $"{_sending} line(s) could not be sent: {error.Message}", error), _connection);
            }

            PrintAvailable();
            Finish("sending failed");
        }

        private void EndOfInput()
        {
            if (!_ownsConnection)
            {
                // The connection stays open for the caller; what arrives later stays queued for Receive-TcpMessage.
                Finish("end of input; the connection stays open");
                return;
            }

            // Like ncat: send FIN, keep printing what the peer still sends, end when it closes.
            WriteVerbose($"End of input: sending FIN and waiting up to {Linger.TotalSeconds:0.###} s for {_connection.RemoteEndPoint} to close.");
            _close = _connection.CloseAsync(Linger);
        }

        private void Finish(string reason)
        {
            _finished = true;
            if (_connection.Error != null && !_errorReported)
            {
                _errorReported = true;
                WriteTcpError(_connection.Error, _connection);
            }

            WriteVerbose($"Session with {_connection.RemoteEndPoint} ended ({reason}): {_connection.MessagesSent} line(s) sent, {_received} received.");
            CloseOwned(graceful: true);
        }

        /// <summary>Closes what the session opened (never a -Connection it was given).</summary>
        private void CloseOwned(bool graceful)
        {
            if (_ownsConnection && _connection != null && _connection.State != ConnectionState.Closed)
            {
                if (graceful) WaitQuietly(_close ?? _connection.CloseAsync(TimeSpan.Zero));
                else _connection.Abort();
            }

            if (_server != null)
            {
                WaitQuietly(_server.StopAsync());
                _server = null;
            }
        }

        private static void WaitQuietly(Task task)
        {
            try
            {
                task.Wait(CleanupTimeout);
            }
            catch (AggregateException)
            {
                // Closing is best effort here: the session is over either way.
            }
        }

        /// <summary>Ctrl+C, a terminating error or the end: whatever the session opened is closed.</summary>
        public void Dispose()
        {
            CloseOwned(graceful: false);
        }

        private static async Task<bool> WaitAsync(Task task, TimeSpan limit, CancellationToken token)
        {
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(token))
            {
                var delay = Task.Delay(limit, cts.Token);
                var first = await Task.WhenAny(task, delay).ConfigureAwait(false);
                cts.Cancel();
                token.ThrowIfCancellationRequested();
                return first == task;
            }
        }

        /// <summary>The -Listen server's handler: takes the first client, turns away any other.</summary>
        private sealed class OneClientHandler : LineHandler
        {
            private readonly TaskCompletionSource<TcpConnection> _accepted =
                new TaskCompletionSource<TcpConnection>(TaskCreationOptions.RunContinuationsAsynchronously);

            private readonly TaskCompletionSource<bool> _disconnected =
                new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

            public Task<TcpConnection> Accepted => _accepted.Task;

            /// <summary>Completes when the client's connection has closed and its messages are queued.</summary>
            public Task Disconnected => _disconnected.Task;

            public override bool NeedsMessages => false;

            internal override bool RunsInline => true;

            public override void OnConnected(TcpConnection connection)
            {
                if (!_accepted.TrySetResult(connection)) connection.Abort();
            }

            public override void OnDisconnected(TcpConnection connection)
            {
                if (_accepted.Task.IsCompleted && _accepted.Task.Result == connection) _disconnected.TrySetResult(true);
            }

            public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
                IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken) => default;
        }
    }
}

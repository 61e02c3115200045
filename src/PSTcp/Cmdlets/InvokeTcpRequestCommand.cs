using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Invoke-TcpRequest: a request/response exchange in one command. Sends the messages
    /// (framed like Send-TcpMessage), then writes the reply: one message by default, or -Count
    /// messages, up to a match of -Until, or -ByteCount bytes of a Raw stream. With -HostName and
    /// -Port it connects first and closes after.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Invoke, "TcpRequest", DefaultParameterSetName = ToHost, HelpUri = HelpLinks.Base + "Invoke-TcpRequest.md")]
    [OutputType(typeof(TcpMessage))]
    public sealed class InvokeTcpRequestCommand : ClientFramingCmdlet
    {
        private const string ToHost = "HostName";
        private const string ToConnection = "Connection";
        private const string ToUnixSocket = ConnectTcpEndpointCommand.ToUnixSocket;

        /// <summary>Connect to the Unix domain socket at this path instead of a host and port.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ToUnixSocket)]
        [ValidateNotNullOrEmpty]
        public string UnixSocket { get; set; }

        /// <summary>Connect through this proxy: socks5://, socks4a://, socks4:// or http:// (CONNECT).</summary>
        [Parameter]
        [ValidateNotNull]
        public Uri Proxy { get; set; }

        /// <summary>The proxy's user name and password.</summary>
        [Parameter]
        [Credential]
        public PSCredential ProxyCredential { get; set; }
        internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

        private volatile TcpConnection _owned;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ToHost)]
        [Alias("ComputerName", "Host")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, Position = 1, ParameterSetName = ToHost)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        /// <summary>The request: strings, byte arrays or TcpMessages, as for Send-TcpMessage.</summary>
        [Parameter(Position = 2, ParameterSetName = ToHost)]
        [Parameter(Position = 0, ParameterSetName = ToConnection)]
        [Parameter(Position = 0, ParameterSetName = ToUnixSocket)]
        [MessageTransformation]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public object[] Message { get; set; }

        /// <summary>The reply is this many messages.</summary>
        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int Count { get; set; }

        /// <summary>The reply ends with the first message (or, on a Raw stream, the bytes) matching this regex.</summary>
        [Parameter]
        [ValidateNotNull]
        public string Until { get; set; }

        [Parameter]
        public SwitchParameter SimpleMatch { get; set; }

        [Parameter]
        public SwitchParameter CaseSensitive { get; set; }

        /// <summary>On a Raw connection: the reply is exactly this many bytes (0 to 2 GiB - 57).</summary>
        [Parameter]
        [ValidateRange(0L, long.MaxValue)]
        public long ByteCount { get; set; }

        /// <summary>One deadline for connecting, sending and the whole reply.</summary>
        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = ToUnixSocket)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        /// <summary>Line framing: the terminator after each request message (default LF).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NewLineCompleter))]
        public string NewLine { get; set; }

        protected override void EndProcessing()
        {
            if (ParameterSetName == ToConnection && HasFramingParameters)
            {
                ThrowTcpError(new ArgumentException(
                    "The framing parameters apply to -HostName only: a connection keeps the framing it was opened with.", nameof(Framing)), Connection);
            }

            var client = Client;
            if (ParameterSetName == ToConnection) client.RefuseWith(this, "they apply to -HostName and -UnixSocket only: the connection is already made.");

            var clock = System.Diagnostics.Stopwatch.StartNew();
            var connection = Connection;
            ConnectionOptions options = null;
            if (connection == null)
            {
                // Check everything before connecting, so a bad argument costs no connection.
                options = new ConnectionOptions { Name = UnixSocket != null ? "unix:" + UnixSocket : $"{HostName}:{Port}", Encoding = Encoding };
                ApplyFraming(options);
                client.WithProxy(Proxy, ProxyCredential).Apply(this, options);
                if (UnixSocket != null) options.UnixSocketPath = ClientConnectionParameters.UnixPath(this, UnixSocket);
                // A Raw stream is read losslessly: its queue waits rather than drop.
                if (options.Framing == PSTcp.Framing.FramingKind.Raw) options.QueueFullMode = QueueFullMode.Wait;
            }

            if (connection == null)
            {
                CreateGoal(null, options.Framing == PSTcp.Framing.FramingKind.Raw);
                connection = ConnectTcpEndpointCommand.Connect(this, HostName, Port, Timeout, options, 0, TimeSpan.Zero);
                _owned = connection;
                // Registered while it lives, so Remove-Module closes it too.
                TcpRegistry.Add(connection);
            }

            bool done = false;
            try
            {
                var goal = CreateGoal(connection, false);
                Send(connection);
                var left = Timeout - clock.Elapsed;
                var verbose = MyInvocation.BoundParameters.TryGetValue("Verbose", out var v) && ((SwitchParameter)v).IsPresent;
                ReceiveLoop.Receive(this, connection.AsSource(), connection.RemoteEndPoint.ToString(), connection, goal,
                    left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1), verbose);
                done = true;
            }
            finally
            {
                if (Connection == null)
                {
                    // Ours: closed gracefully after the reply; reset when the exchange failed or was stopped.
                    if (done) Wait(connection.CloseAsync(TimeSpan.FromSeconds(2)));
                    else connection.Abort();
                    TcpRegistry.Remove(connection);
                }
            }
        }

        protected override void StopProcessing()
        {
            base.StopProcessing();
            // Ctrl+C: a send stuck on a peer that doesn't read ends with the connection.
            _owned?.Abort();
        }

        /// <summary>The reply's end; with no connection yet, only checks the parameters (for a connection that will be Raw or not).</summary>
        private ReceiveGoal CreateGoal(TcpConnection connection, bool raw)
        {
            var bound = MyInvocation.BoundParameters;
            int? count = bound.ContainsKey(nameof(Count)) ? Count : (int?)null;
            long? byteCount = bound.ContainsKey(nameof(ByteCount)) ? ByteCount : (long?)null;
            // The default reply is one message: what a request/response protocol answers
            // (on a Raw connection, what the first read delivered).
            if (count == null && byteCount == null && Until == null) count = 1;
            try
            {
                if (connection != null) return ReceiveGoal.Create(count, Until, SimpleMatch, CaseSensitive, byteCount, connection);
                ReceiveGoal.Check(count, Until, SimpleMatch, CaseSensitive, byteCount, raw);
            }
            catch (ArgumentException e)
            {
                ThrowTcpError(e, (object)connection ?? HostName ?? UnixSocket);
            }

            return null;
        }

        private void Send(TcpConnection connection)
        {
            if (Message == null || Message.Length == 0) return;
            using (var buffer = new LineBuffer(connection, connection.Encoding, NewLine))
            {
                SendAll(buffer, connection);
            }
        }

        private void SendAll(LineBuffer buffer, TcpConnection connection)
        {
            foreach (var message in Message)
            {
                try
                {
                    if (!SendTcpMessageCommand.Append(buffer, message, connection.Framing))
                    {
                        buffer.Send(this, "message");
                        SendTcpMessageCommand.Append(buffer, message, connection.Framing);
                    }
                }
                catch (ArgumentException e)
                {
                    WriteTcpError(e, message);
                }
            }

            buffer.Send(this, "message");
        }
    }
}

using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Send-TcpMessage: sends strings, byte arrays and TcpMessages, each framed by the
    /// connection's framing (or unframed with -Raw), batched like Send-TcpLine. To a connection,
    /// or to -HostName/-Port with the framing parameters (connect, send, close).
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "TcpMessage", DefaultParameterSetName = ToConnection, HelpUri = HelpLinks.Base + "Send-TcpMessage.md")]
    [OutputType(typeof(TcpConnection))]
    public sealed class SendTcpMessageCommand : ClientFramingCmdlet, IDisposable
    {
        private const string ToConnection = "Connection";
        private const string ToHost = "HostName";
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

        private LineBuffer _buffer;
        private OneShotConnection _oneShot;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ToConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [Alias("ComputerName")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = ToUnixSocket)]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = ConnectTcpEndpointCommand.DefaultTimeout;

        [Parameter(ParameterSetName = ToHost)]
        [Parameter(ParameterSetName = ToUnixSocket)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        /// <summary>Strings, byte arrays (each one message) and TcpMessages (their Data).</summary>
        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
        [MessageTransformation]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public object[] Message { get; set; }

        /// <summary>Line framing: the terminator after each message (default LF as encoded).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NewLineCompleter))]
        public string NewLine { get; set; }

        /// <summary>Send the bytes as they are, without the connection's framing.</summary>
        [Parameter]
        public SwitchParameter Raw { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void BeginProcessing()
        {
            base.BeginProcessing();
            var client = Client;
            if (ParameterSetName != ToConnection)
            {
                var options = new ConnectionOptions { Encoding = Encoding, QueueCapacity = 1, QueueFullMode = QueueFullMode.DropOldest };
                ApplyFraming(options);
                client.WithProxy(Proxy, ProxyCredential).Apply(this, options);
                if (UnixSocket != null) options.UnixSocketPath = ClientConnectionParameters.UnixPath(this, UnixSocket);
                _oneShot = new OneShotConnection(ConnectTcpEndpointCommand.Connect(this, HostName, Port, Timeout, options, 0, TimeSpan.Zero));
            }
            else if (HasFramingParameters || client.AnyGiven(this))
            {
                client.RefuseWith(this, "they apply to -HostName and -UnixSocket only: the connection is already made.");
                ThrowTcpError(new ArgumentException(
                    "The framing parameters apply to -HostName only: a connection sends with the framing it was opened with.", nameof(Framing)), Connection);
            }
        }

        protected override void ProcessRecord()
        {
            var connection = _oneShot?.Connection ?? Connection;
            if (_buffer == null || _buffer.Connection != connection)
            {
                Flush();
                _buffer?.Dispose();
                _buffer = new LineBuffer(connection, connection.Encoding, NewLine);
            }

            if (connection.State != ConnectionState.Open)
            {
                foreach (var message in Message)
                {
                    WriteTcpError(connection.NotOpenError(), message);
                }

                return;
            }

            var framing = Raw ? null : connection.Framing;
            foreach (var message in Message)
            {
                try
                {
                    if (!Append(_buffer, message, framing))
                    {
                        Flush();
                        Append(_buffer, message, framing);
                    }
                }
                catch (ArgumentException e)
                {
                    // This message can't be framed (a wrong fixed length, too long for its prefix): the others go on.
                    WriteTcpError(e, message);
                }
            }
        }

        protected override void EndProcessing()
        {
            Flush();
            _oneShot?.Close(this);
            var sent = _oneShot?.Connection ?? Connection;
            if (PassThru && sent != null) WriteObject(sent);
        }

        protected override void StopProcessing()
        {
            base.StopProcessing();
            _oneShot?.Abort();
        }

        /// <summary>Also runs when the pipeline fails upstream: the -HostName connection must not outlive it.</summary>
        public void Dispose()
        {
            _buffer?.Dispose();
            _buffer = null;
            _oneShot?.Dispose();
        }

        /// <summary>Adds one message to the batch (false: the batch is full, send it first); ArgumentException when the framing refuses it.</summary>
        internal static bool Append(LineBuffer buffer, object message, Framing.MessageFraming framing)
        {
            var value = message is PSObject pso ? pso.BaseObject : message;
            switch (value)
            {
                case byte[] bytes:
                    return buffer.AppendFrame(bytes, framing);
                case TcpMessage received:
                    return buffer.AppendFrame(received.Data, framing);
                case byte b:
                    // A byte array piped without the unary comma arrives one byte at a time.
                    return buffer.AppendFrame(new[] { b }, framing);
                case null:
                    return buffer.AppendFrame(string.Empty, framing);
                case string text:
                    return buffer.AppendFrame(text, framing);
                default:
                    return buffer.AppendFrame(LanguagePrimitives.ConvertTo<string>(message), framing);
            }
        }

        private void Flush() => _buffer?.Send(this, "message");
    }
}

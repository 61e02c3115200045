using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpRelay: a server that forwards every accepted connection to -TargetHost:-TargetPort,
    /// byte for byte both ways, and (unless -NoQueue) frames both directions into its queue.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpRelay", DefaultParameterSetName = ToHost, SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Start-TcpRelay.md")]
    [OutputType(typeof(TcpServer))]
    public sealed partial class StartTcpRelayCommand : ServerCommandBase
    {
        internal static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(10);

        private const string ToHost = "TargetHost";
        private const string ToUnixSocket = "TargetUnixSocket";

        private ConnectionOptions _targetOptions;

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [ValidateNotNullOrEmpty]
        public string TargetHost { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [ValidateRange(1, 65535)]
        public int TargetPort { get; set; }

        /// <summary>Forward to the Unix domain socket at this path instead of -TargetHost:-TargetPort.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ToUnixSocket)]
        [ValidateNotNullOrEmpty]
        public string TargetUnixSocket { get; set; }

        /// <summary>Where clients go, for messages: host:port or unix:path.</summary>
        private string TargetText => TargetUnixSocket != null ? "unix:" + ClientConnectionParameters.UnixPath(this, TargetUnixSocket) : $"{TargetHost}:{TargetPort}";

        /// <summary>How long connecting to the target may take before that client is closed.</summary>
        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan ConnectTimeout { get; set; } = DefaultConnectTimeout;

        /// <summary>Speak TLS to the target, validating its certificate unless -SkipCertificateCheck.</summary>
        [Parameter]
        public SwitchParameter UseTls { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TargetServerName { get; set; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>Reach the target through this proxy: socks5://, socks4a://, socks4:// or http:// (CONNECT).</summary>
        [Parameter(ParameterSetName = ToHost)]
        [ValidateNotNull]
        public Uri Proxy { get; set; }

        /// <summary>The proxy's user name and password.</summary>
        [Parameter(ParameterSetName = ToHost)]
        [Credential]
        public System.Management.Automation.PSCredential ProxyCredential { get; set; }

        /// <summary>TLS to the target: the client certificate (with its private key) to show it.</summary>
        [Parameter]
        [ValidateNotNull]
        public System.Security.Cryptography.X509Certificates.X509Certificate2 ClientCertificate { get; set; }

        /// <summary>TLS to the target: the client certificate from a PFX or PEM file.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificatePath { get; set; }

        /// <summary>The key of a PEM -ClientCertificatePath, when it is in a file of its own.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificateKeyPath { get; set; }

        /// <summary>Tell the target who each client is with a PROXY protocol header.</summary>
        [Parameter]
        public ProxyProtocolVersion SendProxyProtocol { get; set; } = ProxyProtocolVersion.None;

        protected override void EndProcessing()
        {
            if (ConnectTimeout <= TimeSpan.Zero)
            {
                ThrowTcpError(new ArgumentException("ConnectTimeout must be positive.", nameof(ConnectTimeout)), ConnectTimeout);
            }

            if (!ShouldStart($"relaying to {TargetText}")) return;

            _targetOptions = new ConnectionOptions
            {
                UseTls = UseTls || SkipCertificateCheck || TargetServerName != null,
                TlsServerName = TargetServerName,
                SkipCertificateCheck = SkipCertificateCheck,
                SendProxyProtocol = SendProxyProtocol,
                UnixSocketPath = TargetUnixSocket != null ? ClientConnectionParameters.UnixPath(this, TargetUnixSocket) : null,
            };
            // The target side's client settings: the same code as every connecting cmdlet's.
            new ClientConnectionParameters
            {
                ClientCertificate = ClientCertificate,
                ClientCertificatePath = ClientCertificatePath,
                ClientCertificateKeyPath = ClientCertificateKeyPath,
            }.WithProxy(Proxy, ProxyCredential).Apply(this, _targetOptions);

            var handler = new RelayHandler(TargetHost, TargetPort, _targetOptions, ConnectTimeout, queueMessages: !NoQueue);
            handler.Recorder = CreateRecorder(); // -RecordPath (StartTcpRelayCommand.Recording.cs)
            var server = StartServer(handler);
            // Target connections' messages carry the relay's name as their Source; a generated
            // name is known only now (a client in the first microseconds keeps a null one).
            _targetOptions.Name = server.Name;
            WriteVerbose($"{server.Name} relays {server.LocalEndPoint} to {handler.Target}" +
                (_targetOptions.UseTls ? " with TLS" : string.Empty) +
                (SendProxyProtocol != ProxyProtocolVersion.None ? $", sending PROXY {SendProxyProtocol} headers." : "."));
            WriteObject(server);
        }

        /// <summary>Client-to-target messages are marked as such; target-to-client ones are framed like them.</summary>
        protected override void ConfigureOptions(TcpServerOptions options)
        {
            options.AcceptedDirection = MessageDirection.ClientToTarget;
            if (NoQueue)
            {
                // Nothing is queued, so nothing needs framing: any stream passes, however long its lines.
                options.Framing = PSTcp.Framing.FramingKind.Raw;
            }

            _targetOptions.Name = options.Name;
            _targetOptions.Encoding = options.Encoding;
            _targetOptions.MaxLineLength = options.MaxLineLength;
            _targetOptions.QueueCapacity = options.QueueCapacity;
            _targetOptions.QueueByteLimit = options.QueueByteLimit;
            _targetOptions.QueueFullMode = options.QueueFullMode;
            _targetOptions.Framing = options.Framing;
            _targetOptions.Delimiter = options.Delimiter;
            _targetOptions.DelimiterText = options.DelimiterText;
            _targetOptions.PrefixSize = options.PrefixSize;
            _targetOptions.ByteOrder = options.ByteOrder;
            _targetOptions.MessageLength = options.MessageLength;
            options.CopyFramingTo(_targetOptions);
        }
    }
}

using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>Connect-TcpEndpoint: opens a client connection whose incoming lines are queued.</summary>
    [Cmdlet(VerbsCommunications.Connect, "TcpEndpoint", DefaultParameterSetName = ToHost, SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Connect-TcpEndpoint.md")]
    [OutputType(typeof(TcpConnection))]
    public sealed class ConnectTcpEndpointCommand : FramingCmdlet, IDynamicParameters
    {
        private const string ToHost = "HostName";
        internal const string ToUnixSocket = "UnixSocket";

        private ClientConnectionParameters _client;

        /// <summary>TLS client certificates, trust, pins, ALPN and versions; -Proxy; -LocalAddress/-LocalPort.</summary>
        public object GetDynamicParameters() => _client ?? (_client = new ClientConnectionParameters());

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
        internal static readonly TimeSpan DefaultRetryInterval = TimeSpan.FromSeconds(1);

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ToHost)]
        [Alias("ComputerName", "Host")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, Position = 1, ParameterSetName = ToHost)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        /// <summary>Speak TLS; the server's certificate is validated unless -SkipCertificateCheck.</summary>
        [Parameter]
        public SwitchParameter UseTls { get; set; }

        /// <summary>The name the server's certificate must carry (default: -HostName).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ServerName { get; set; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        /// <summary>Further attempts while the peer refuses or times out.</summary>
        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int RetryCount { get; set; }

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan RetryInterval { get; set; } = DefaultRetryInterval;

        [Parameter]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int QueueCapacity { get; set; } = ConnectionOptions.DefaultQueueCapacity;

        [Parameter]
        public QueueFullMode QueueFullMode { get; set; } = QueueFullMode.DropOldest;

        /// <summary>Most bytes of queued messages' Data (beside -QueueCapacity messages); -QueueFullMode applies to both.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long QueueByteLimit { get; set; } = MessageQueue.DefaultByteLimit;

        /// <summary>Send a PROXY protocol header (v1 or v2) naming this connection's end points first, before TLS.</summary>
        [Parameter]
        public ProxyProtocolVersion ProxyProtocol { get; set; } = ProxyProtocolVersion.None;

        protected override void EndProcessing()
        {
            var target = (UnixSocket != null ? "unix:" + UnixSocket : $"{HostName}:{Port}") + (Proxy != null ? " through " + Proxy : string.Empty);
            if (!ShouldProcess(target, "Open a TCP connection")) return;
            var options = new ConnectionOptions
            {
                Name = Name,
                Encoding = Encoding,
                MaxLineLength = MaxLineLength,
                QueueCapacity = QueueCapacity,
                QueueFullMode = QueueFullMode,
                QueueByteLimit = QueueByteLimit,
                UseTls = UseTls || SkipCertificateCheck || ServerName != null,
                TlsServerName = ServerName,
                SkipCertificateCheck = SkipCertificateCheck,
                SendProxyProtocol = ProxyProtocol,
            };
            // Framing (FramingCmdlet): checked here, so a bad combination fails before connecting.
            ApplyFraming(options);
            ((ClientConnectionParameters)GetDynamicParameters()).WithProxy(Proxy, ProxyCredential).Apply(this, options);
            if (UnixSocket != null) options.UnixSocketPath = ClientConnectionParameters.UnixPath(this, UnixSocket);
            if (options.Framing == PSTcp.Framing.FramingKind.Raw && !MyInvocation.BoundParameters.ContainsKey(nameof(QueueFullMode)))
            {
                // A Raw stream is read losslessly (stream reads never skip bytes): its queue
                // waits, pausing the reads, unless a drop mode is asked for.
                options.QueueFullMode = QueueFullMode.Wait;
            }

            var connection = Connect(this, HostName, Port, Timeout, options, RetryCount, RetryInterval);
            TcpRegistry.Add(connection);
            WriteObject(connection);
        }

        /// <summary>
        /// Connects, trying again up to <paramref name="retryCount"/> times while the peer refuses
        /// or times out, so a script can start a client and its server at once. Throws the
        /// terminating error of the last attempt.
        /// </summary>
        internal static TcpConnection Connect(TcpCmdlet cmdlet, string host, int port, TimeSpan timeout,
            ConnectionOptions options, int retryCount, TimeSpan retryInterval)
        {
            // -Timeout and -RetryInterval were checked by TcpCmdlet.BeginProcessing.
            var where = options.UnixSocketPath != null ? "unix:" + options.UnixSocketPath : $"{host}:{port}";
            if (options.Proxy != null) where += " through " + ProxyClient.Describe(options.Proxy);
            for (int attempt = 1; ; attempt++)
            {
                cmdlet.WriteVerbose($"Connecting to {where}, attempt {attempt} of {retryCount + 1} (timeout {timeout.TotalSeconds:0.###} s).");
                try
                {
                    var connection = cmdlet.Wait(TcpConnection.ConnectAsync(host, port, options, timeout, cmdlet.Cancellation));
                    cmdlet.WriteVerbose($"{connection.Name} (Id {connection.Id}) connected: {connection.LocalEndPoint} -> {connection.RemoteEndPoint}.");
                    return connection;
                }
                catch (TcpException e) when (attempt <= retryCount && IsRetryable(e))
                {
                    cmdlet.WriteVerbose($"Attempt {attempt} failed ({e.Kind}): {e.Message} Retrying in {retryInterval.TotalSeconds:0.###} s.");
                    cmdlet.Wait(DelayAsync(retryInterval, cmdlet.Cancellation));
                }
                catch (TcpException e)
                {
                    cmdlet.ThrowTerminatingError(TcpErrors.From(e, where));
                    return null;
                }
                catch (Exception e) when (e is ArgumentException || e is PlatformNotSupportedException)
                {
                    // Options the core refused (a local address with a Unix socket), or a runtime without the feature.
                    cmdlet.ThrowTerminatingError(TcpErrors.From(e is ArgumentException ? e : new ArgumentException(e.Message, e), where));
                    return null;
                }
            }
        }

        // No route yet is worth another try (a host or interface coming up); a firewall's refusal is not.
        private static bool IsRetryable(TcpException e) =>
            e.Kind == TcpErrorKind.ConnectionRefused || e.Kind == TcpErrorKind.ConnectTimeout || e.Kind == TcpErrorKind.HostUnreachable;

        private static async System.Threading.Tasks.Task<bool> DelayAsync(TimeSpan delay, System.Threading.CancellationToken token)
        {
            await System.Threading.Tasks.Task.Delay(delay, token).ConfigureAwait(false);
            return true;
        }
    }
}

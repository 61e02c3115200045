using System;
using System.Linq;
using System.Management.Automation;
using System.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>The parameters every server-starting cmdlet shares, and how they become options.</summary>
    public abstract class ServerCommandBase : FramingCmdlet
    {
        [Parameter(Position = 0)]
        [ValidateRange(0, 65535)]
        public int Port { get; set; } = TcpServerOptions.DefaultPort;

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Address { get; set; } = "127.0.0.1";

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int MaxConnections { get; set; } = TcpServerOptions.DefaultMaxConnections;

        [Parameter]
        [TimeSpanTransformation(AllowZero = true)]
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int QueueCapacity { get; set; } = ConnectionOptions.DefaultQueueCapacity;

        [Parameter]
        public QueueFullMode QueueFullMode { get; set; } = QueueFullMode.DropOldest;

        /// <summary>Most bytes of queued messages' Data (beside -QueueCapacity messages); -QueueFullMode applies to both.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long QueueByteLimit { get; set; } = MessageQueue.DefaultByteLimit;

        [Parameter]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        /// <summary>Echo (or handle) lines without queuing them: for a server nobody consumes from.</summary>
        [Parameter]
        public SwitchParameter NoQueue { get; set; }

        /// <summary>Addresses and CIDR ranges allowed to connect; others are closed at once.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] AllowedRemoteAddress { get; set; }

        /// <summary>Serve TLS with this certificate, which must have its private key.</summary>
        [Parameter]
        [ValidateNotNull]
        public X509Certificate2 Certificate { get; set; }

        /// <summary>Serve TLS with the certificate in this PFX (PKCS#12) file.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string CertificatePath { get; set; }

        [Parameter]
        public SecureString CertificatePassword { get; set; }

        /// <summary>Each connection must start with a PROXY v1 or v2 header; its source becomes RemoteEndPoint.</summary>
        [Parameter]
        public SwitchParameter ProxyProtocol { get; set; }

        /// <summary>Addresses and CIDR ranges PROXY headers are accepted from (default: loopback).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] TrustedProxy { get; set; }

        /// <summary>Validates the parameters and binds the server; terminating errors on failure.</summary>
        protected TcpServer StartServer(LineHandler handler)
        {
            var options = new TcpServerOptions
            {
                Address = Address,
                Port = Port,
                Name = Name,
                MaxConnections = MaxConnections,
                MaxLineLength = MaxLineLength,
                IdleTimeout = IdleTimeout,
                QueueCapacity = QueueCapacity,
                QueueFullMode = QueueFullMode,
                QueueByteLimit = QueueByteLimit,
                Encoding = Encoding,
                AllowedRemoteAddresses = AllowedRemoteAddress?.Select(ParseRange).ToList(),
                Certificate = LoadCertificate(),
                QueueMessages = !NoQueue,
                ProxyProtocol = ProxyProtocol,
                TrustedProxies = TrustedProxy?.Select(ParseRange).ToList(),
            };
            // Framing (FramingCmdlet): checked here, so a bad combination fails before binding.
            ApplyFraming(options);

            ConfigureOptions(options);
            TcpServer server = null;
            try
            {
                server = TcpServer.Start(options, handler);
            }
            catch (Exception e) when (e is TcpException || e is ArgumentException)
            {
                ThrowTcpError(e, $"{Address}:{Port}");
            }

            TcpRegistry.Add(server);
            WriteVerbose($"{server.Name} (Id {server.Id}) is listening on {server.LocalEndPoint}" +
                (options.Certificate != null ? $" with TLS ({options.Certificate.Subject})" : string.Empty) +
                (options.AllowedRemoteAddresses == null ? "." : $", allowing {string.Join(", ", options.AllowedRemoteAddresses)}."));
            return server;
        }

        /// <summary>Lets a server cmdlet adjust the options built from the shared parameters before the server starts.</summary>
        protected virtual void ConfigureOptions(TcpServerOptions options)
        {
        }

        private X509Certificate2 LoadCertificate()
        {
            if (Certificate != null && CertificatePath != null)
            {
                ThrowTerminatingError(TcpErrors.Record(new ArgumentException("Use -Certificate or -CertificatePath, not both."),
                    TcpErrors.CertificateConflict, ErrorCategory.InvalidArgument, CertificatePath));
            }

            var certificate = Certificate;
            if (CertificatePath != null)
            {
                var path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(CertificatePath);
                try
                {
                    certificate = CertificatePassword == null ? new X509Certificate2(path) : new X509Certificate2(path, CertificatePassword);
                }
                catch (Exception e) when (e is CryptographicException || e is System.IO.IOException)
                {
                    ThrowTerminatingError(TcpErrors.Record(e, TcpErrors.CertificateInvalid, ErrorCategory.InvalidData, CertificatePath));
                }
            }

            if (certificate != null && !certificate.HasPrivateKey)
            {
                ThrowTerminatingError(TcpErrors.Record(
                    new ArgumentException($"The certificate '{certificate.Subject}' has no private key; a TLS server needs it."),
                    TcpErrors.CertificateInvalid, ErrorCategory.InvalidArgument, certificate));
            }

            return certificate;
        }

        private AddressRange ParseRange(string text)
        {
            try
            {
                return AddressRange.Parse(text);
            }
            catch (ArgumentException e) when (!(e is ArgumentNullException))
            {
                // Not canonical (an octet with a leading zero): SPEC's InvalidArgument.
                ThrowTerminatingError(TcpErrors.Record(e, TcpErrors.InvalidArgumentId, ErrorCategory.InvalidArgument, text));
                return null;
            }
            catch (FormatException e)
            {
                ThrowTerminatingError(TcpErrors.Record(e, TcpErrors.InvalidAddressRange, ErrorCategory.InvalidArgument, text));
                return null;
            }
        }
    }
}

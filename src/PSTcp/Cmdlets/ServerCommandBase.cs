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
        [ArgumentCompleter(typeof(AddressCompleter))]
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

        /// <summary>The private key of a PEM -CertificatePath, when it is not in the same file.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string CertificateKeyPath { get; set; }

        /// <summary>TLS: ask clients for a certificate (Allow), or insist on one (Require).</summary>
        [Parameter]
        public ClientCertificateMode ClientCertificateMode { get; set; } = ClientCertificateMode.None;

        /// <summary>TLS: a PEM bundle of the authorities clients' certificates must chain to, instead of the system's store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TrustedCertificatePath { get; set; }

        /// <summary>TLS ALPN: the protocols this server accepts, in order of preference.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] ApplicationProtocol { get; set; }

        /// <summary>TLS: the versions allowed (Tls12, Tls13); by default the system's choice.</summary>
        [Parameter]
        public System.Security.Authentication.SslProtocols SslProtocol { get; set; } = System.Security.Authentication.SslProtocols.None;

        /// <summary>TLS SNI: certificates by the server name a client asks for (X509Certificate2 objects or PFX/PEM paths); -Certificate serves the rest.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public System.Collections.Hashtable CertificateByServerName { get; set; }

        /// <summary>Listen on a Unix domain socket at this path instead of an address and port.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string UnixSocket { get; set; }

        /// <summary>Each connection must start with a PROXY v1 or v2 header; its source becomes RemoteEndPoint.</summary>
        [Parameter]
        public SwitchParameter ProxyProtocol { get; set; }

        /// <summary>Addresses and CIDR ranges PROXY headers are accepted from (default: loopback).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] TrustedProxy { get; set; }

        /// <summary>
        /// ShouldProcess for the server this cmdlet would start: false under -WhatIf (or a
        /// declined -Confirm), and then nothing is bound or started.
        /// </summary>
        protected bool ShouldStart(string what = null)
        {
            var where = UnixSocket != null ? "unix:" + UnixSocket : $"{Address}:{Port}" + (Port == 0 ? " (a free port)" : string.Empty);
            var target = (Name != null ? $"{Name} on " : string.Empty) + where + (what != null ? ", " + what : string.Empty);
            return ShouldProcess(target, "Listen for TCP connections");
        }

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
            ApplyTransport(options);

            ConfigureOptions(options);
            TcpServer server = null;
            try
            {
                server = TcpServer.Start(options, handler);
            }
            catch (Exception e) when (e is TcpException || e is ArgumentException)
            {
                ThrowTerminatingError(TcpErrors.BindFailed(e, options.UnixSocketPath != null ? "unix:" + options.UnixSocketPath : $"{Address}:{Port}",
                    Address, Port, options.UnixSocketPath));
            }

            TcpRegistry.Add(server);
            WriteVerbose($"{server.Name} (Id {server.Id}) is listening on {server.LocalEndPoint}" +
                (options.Certificate != null ? $" with TLS ({options.Certificate.Subject})" : string.Empty) +
                (options.AllowedRemoteAddresses == null ? "." : $", allowing {string.Join(", ", options.AllowedRemoteAddresses)}."));
            return server;
        }

        /// <summary>-UnixSocket and the TLS options beyond the certificate.</summary>
        private void ApplyTransport(TcpServerOptions options)
        {
            if (UnixSocket != null)
            {
                var bound = MyInvocation.BoundParameters;
                if (bound.ContainsKey(nameof(Port)) || bound.ContainsKey(nameof(Address)) || bound.ContainsKey(nameof(AllowedRemoteAddress)))
                {
                    ThrowTerminatingError(TcpErrors.InvalidArgument("-UnixSocket listens on a path: -Port, -Address and -AllowedRemoteAddress don't apply.", UnixSocket));
                }

                options.UnixSocketPath = ClientConnectionParameters.UnixPath(this, UnixSocket);
            }

            bool tlsOptions = ClientCertificateMode != ClientCertificateMode.None || TrustedCertificatePath != null || ApplicationProtocol != null
                || SslProtocol != System.Security.Authentication.SslProtocols.None;
            if (tlsOptions && options.Certificate == null)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument(
                    "-ClientCertificateMode, -TrustedCertificatePath, -ApplicationProtocol and -SslProtocol are TLS settings: give -Certificate or -CertificatePath too.", this.MyInvocation.MyCommand.Name));
            }

            if (CertificateByServerName != null)
            {
                if (options.Certificate == null)
                {
                    ThrowTerminatingError(TcpErrors.InvalidArgument("-CertificateByServerName needs -Certificate or -CertificatePath for the other names.", CertificateByServerName));
                }

                var byName = new System.Collections.Generic.Dictionary<string, X509Certificate2>(StringComparer.OrdinalIgnoreCase);
                foreach (System.Collections.DictionaryEntry entry in CertificateByServerName)
                {
                    var value = entry.Value is PSObject wrapped ? wrapped.BaseObject : entry.Value;
                    var certificate = value as X509Certificate2
                        ?? (value is string path ? ClientConnectionParameters.LoadCertificate(this, path, null, null) : null);
                    if (certificate == null || !certificate.HasPrivateKey)
                    {
                        ThrowTerminatingError(TcpErrors.Record(new ArgumentException(
                            $"The certificate for '{entry.Key}' must be an X509Certificate2 with its private key, or the path of a PFX or PEM file with its key."),
                            TcpErrors.CertificateInvalid, ErrorCategory.InvalidArgument, entry.Key));
                    }

                    byName[entry.Key.ToString()] = certificate;
                }

                options.CertificatesByServerName = byName;
            }

            options.ClientCertificateMode = ClientCertificateMode;
            if (TrustedCertificatePath != null) options.TrustedCertificates = ClientConnectionParameters.LoadBundle(this, TrustedCertificatePath);
            options.ApplicationProtocols = ApplicationProtocol;
            options.SslProtocols = SslProtocol;
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
            if (CertificateKeyPath != null && CertificatePath == null)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument("-CertificateKeyPath goes with a PEM -CertificatePath.", CertificateKeyPath));
            }

            if (CertificatePath != null)
            {
                // PFX, or PEM with its key in the same file or in -CertificateKeyPath.
                certificate = ClientConnectionParameters.LoadCertificate(this, CertificatePath, CertificateKeyPath, CertificatePassword);
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

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace PSTcp.Commands
{
    /// <summary>
    /// How a client connection is made, shared by every cmdlet that connects (as its dynamic
    /// parameters, so that they are declared and applied in one place): TLS client certificates,
    /// trust and pins, ALPN and versions; a proxy; the local address and port.
    /// </summary>
    public class ClientConnectionParameters
    {
        /// <summary>The names of these parameters, to refuse them where a connection already exists.</summary>
        internal virtual IReadOnlyList<string> Names => s_names;

        // Kept, not built per call: the per-message cmdlets look at them on every call.
        private protected static readonly string[] s_names =
        {
            nameof(ClientCertificate), nameof(ClientCertificatePath), nameof(ClientCertificateKeyPath), nameof(ClientCertificatePassword),
            nameof(TrustedCertificatePath), nameof(CertificateThumbprint), nameof(ApplicationProtocol), nameof(SslProtocol),
            nameof(Proxy), nameof(ProxyCredential), nameof(LocalAddress), nameof(LocalPort),
        };

        /// <summary>Whether any of these parameters was given (no allocation: asked on every call).</summary>
        internal bool AnyGiven(PSCmdlet cmdlet)
        {
            var bound = cmdlet.MyInvocation.BoundParameters;
            if (bound.Count == 0) return false;
            var names = Names;
            for (int i = 0; i < names.Count; i++)
            {
                if (bound.ContainsKey(names[i])) return true;
            }

            return false;
        }

        /// <summary>TLS: the certificate (with its private key) to show a server that asks for one.</summary>
        [Parameter]
        [ValidateNotNull]
        public X509Certificate2 ClientCertificate { get; set; }

        /// <summary>TLS: the client certificate from a PFX file, or a PEM file (with its key, or the key in -ClientCertificateKeyPath).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificatePath { get; set; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificateKeyPath { get; set; }

        [Parameter]
        public SecureString ClientCertificatePassword { get; set; }

        /// <summary>TLS: a PEM bundle of the authorities to trust instead of the system's store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TrustedCertificatePath { get; set; }

        /// <summary>TLS: accept only a server certificate with one of these thumbprints (or public-key pins).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] CertificateThumbprint { get; set; }

        /// <summary>TLS ALPN: the protocols to offer, in order of preference.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] ApplicationProtocol { get; set; }

        /// <summary>TLS: the versions allowed (Tls12, Tls13); by default the system's choice.</summary>
        [Parameter]
        public SslProtocols SslProtocol { get; set; } = SslProtocols.None;

        // -Proxy and -ProxyCredential are static parameters of each cmdlet: as dynamic ones, "-Proxy"
        // would first be bound, as a prefix, to Connect-TcpEndpoint's static -ProxyProtocol.
        private Uri Proxy => _proxy;

        private PSCredential ProxyCredential => _proxyCredential;

        private Uri _proxy;
        private PSCredential _proxyCredential;

        /// <summary>The cmdlet's -Proxy and -ProxyCredential, applied with the rest.</summary>
        internal ClientConnectionParameters WithProxy(Uri proxy, PSCredential credential)
        {
            _proxy = proxy;
            _proxyCredential = credential;
            return this;
        }

        /// <summary>The local address to connect from.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public string LocalAddress { get; set; }

        /// <summary>The local port to connect from.</summary>
        [Parameter]
        [ValidateRange(0, 65535)]
        public int LocalPort { get; set; }

        /// <summary>Refuses these parameters with InvalidArgument when they were given but can't apply (to an existing connection).</summary>
        internal void RefuseWith(TcpCmdlet cmdlet, string why)
        {
            if (!AnyGiven(cmdlet)) return;
            var given = Names.Where(cmdlet.MyInvocation.BoundParameters.ContainsKey).ToList();
            if (given.Count > 0)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.InvalidArgument($"-{string.Join(", -", given)}: {why}", given[0]));
            }
        }

        /// <summary>Puts these parameters into <paramref name="options"/>, loading certificate files; terminating errors for bad ones.</summary>
        internal virtual void Apply(TcpCmdlet cmdlet, ConnectionOptions options)
        {
            if (ClientCertificate != null && ClientCertificatePath != null)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(new ArgumentException("Use -ClientCertificate or -ClientCertificatePath, not both."),
                    TcpErrors.CertificateConflict, ErrorCategory.InvalidArgument, ClientCertificatePath));
            }

            if ((ClientCertificateKeyPath != null || ClientCertificatePassword != null) && ClientCertificatePath == null)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.InvalidArgument("-ClientCertificateKeyPath and -ClientCertificatePassword go with -ClientCertificatePath.", ClientCertificateKeyPath));
            }

            var certificate = ClientCertificate;
            if (ClientCertificatePath != null)
            {
                certificate = LoadCertificate(cmdlet, ClientCertificatePath, ClientCertificateKeyPath, ClientCertificatePassword);
            }

            if (certificate != null && !certificate.HasPrivateKey)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(
                    new ArgumentException($"The client certificate '{certificate.Subject}' has no private key; TLS needs it to prove it is ours."),
                    TcpErrors.CertificateInvalid, ErrorCategory.InvalidArgument, certificate));
            }

            options.ClientCertificate = certificate;
            if (TrustedCertificatePath != null) options.TrustedCertificates = LoadBundle(cmdlet, TrustedCertificatePath);
            options.CertificateThumbprints = CertificateThumbprint;
            options.ApplicationProtocols = ApplicationProtocol;
            options.SslProtocols = SslProtocol;
            if (certificate != null || TrustedCertificatePath != null || CertificateThumbprint != null || ApplicationProtocol != null || SslProtocol != SslProtocols.None)
            {
                options.UseTls = true;
            }

            if (Proxy != null)
            {
                try
                {
                    ProxyClient.Validate(Proxy);
                }
                catch (ArgumentException e)
                {
                    cmdlet.ThrowTerminatingError(TcpErrors.From(e, Proxy));
                }
            }
            else if (ProxyCredential != null)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.InvalidArgument("-ProxyCredential goes with -Proxy.", ProxyCredential));
            }

            options.Proxy = Proxy;
            options.ProxyCredential = ProxyCredential?.GetNetworkCredential();
            options.LocalAddress = LocalAddress;
            options.LocalPort = LocalPort;
        }

        /// <summary>A certificate with its key from a PFX or PEM file; PathNotFound or CertificateInvalid on failure.</summary>
        internal static X509Certificate2 LoadCertificate(PSCmdlet cmdlet, string path, string keyPath, SecureString password)
        {
            var file = Resolve(cmdlet, path);
            var keyFile = keyPath == null ? null : Resolve(cmdlet, keyPath);
            try
            {
                return Certificates.LoadWithKey(file, keyFile, password);
            }
            catch (Exception e) when (e is CryptographicException || e is IOException || e is ArgumentException || e is PlatformNotSupportedException)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(new CryptographicException($"Can't load the certificate '{file}': {e.Message}", e),
                    TcpErrors.CertificateInvalid, ErrorCategory.InvalidData, path));
                return null;
            }
        }

        /// <summary>The certificates of a PEM bundle; PathNotFound or CertificateInvalid on failure.</summary>
        internal static X509Certificate2Collection LoadBundle(PSCmdlet cmdlet, string path)
        {
            var file = Resolve(cmdlet, path);
            try
            {
                return Certificates.LoadBundle(file);
            }
            catch (Exception e) when (e is CryptographicException || e is IOException || e is FormatException)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(new CryptographicException($"Can't read trusted certificates from '{file}': {e.Message}", e),
                    TcpErrors.CertificateInvalid, ErrorCategory.InvalidData, path));
                return null;
            }
        }

        /// <summary>A file-system path from a PowerShell one, which must exist: PathNotFound otherwise.</summary>
        internal static string Resolve(PSCmdlet cmdlet, string path)
        {
            var file = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
            if (!File.Exists(file))
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(new FileNotFoundException($"The file '{file}' does not exist.", file),
                    TcpErrors.PathNotFound, ErrorCategory.ObjectNotFound, path));
            }

            return file;
        }

        /// <summary>A Unix domain socket's path, from a PowerShell one (relative to the current location).</summary>
        internal static string UnixPath(PSCmdlet cmdlet, string path) =>
            cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
    }

    /// <summary>The same, with -UseTls, -ServerName and -SkipCertificateCheck, for the cmdlets that don't declare those themselves.</summary>
    public sealed class ClientConnectionParametersWithTls : ClientConnectionParameters
    {
        internal override IReadOnlyList<string> Names => s_namesWithTls;

        private static readonly string[] s_namesWithTls =
            s_names.Concat(new[] { nameof(UseTls), nameof(ServerName), nameof(SkipCertificateCheck) }).ToArray();

        /// <summary>Speak TLS; the server's certificate is validated unless -SkipCertificateCheck.</summary>
        [Parameter]
        public SwitchParameter UseTls { get; set; }

        /// <summary>The name the server's certificate must carry (default: -HostName).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ServerName { get; set; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get; set; }

        internal override void Apply(TcpCmdlet cmdlet, ConnectionOptions options)
        {
            options.UseTls |= UseTls || SkipCertificateCheck || ServerName != null;
            options.TlsServerName = ServerName;
            options.SkipCertificateCheck = SkipCertificateCheck;
            base.Apply(cmdlet, options);
        }
    }
}

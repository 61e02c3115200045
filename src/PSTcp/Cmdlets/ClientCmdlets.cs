using System.Management.Automation;
using System.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace PSTcp.Commands
{
    // The client connection parameters (TLS, the local end point) of the cmdlets that are
    // called once per message in a loop (Send-TcpLine, Send-TcpMessage, Invoke-TcpRequest),
    // declared statically. As dynamic parameters (IDynamicParameters, as Connect-TcpEndpoint
    // still has them) PowerShell copies the command's whole parameter metadata on every call,
    // even with -Connection where they don't apply: that copy and the merge that follows were
    // a fifth of what a `Send-TcpMessage -Connection $c -Message x` call cost. Each property
    // stores into a ClientConnectionParametersWithTls, which checks and applies them as before
    // (its declarations, of the same names and attributes, stay what Connect-TcpEndpoint binds).

    /// <summary>Send-TcpLine's base: <see cref="TcpCmdlet"/> with the client connection parameters.</summary>
    public abstract class ClientTcpCmdlet : TcpCmdlet
    {
        internal ClientConnectionParametersWithTls Client { get; } = new ClientConnectionParametersWithTls();

        /// <summary>TLS: the certificate (with its private key) to show a server that asks for one.</summary>
        [Parameter]
        [ValidateNotNull]
        public X509Certificate2 ClientCertificate { get => Client.ClientCertificate; set => Client.ClientCertificate = value; }

        /// <summary>TLS: the client certificate from a PFX file, or a PEM file (with its key, or the key in -ClientCertificateKeyPath).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificatePath { get => Client.ClientCertificatePath; set => Client.ClientCertificatePath = value; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificateKeyPath { get => Client.ClientCertificateKeyPath; set => Client.ClientCertificateKeyPath = value; }

        [Parameter]
        public SecureString ClientCertificatePassword { get => Client.ClientCertificatePassword; set => Client.ClientCertificatePassword = value; }

        /// <summary>TLS: a PEM bundle of the authorities to trust instead of the system's store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TrustedCertificatePath { get => Client.TrustedCertificatePath; set => Client.TrustedCertificatePath = value; }

        /// <summary>TLS: accept only a server certificate with one of these thumbprints (or public-key pins).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] CertificateThumbprint { get => Client.CertificateThumbprint; set => Client.CertificateThumbprint = value; }

        /// <summary>TLS ALPN: the protocols to offer, in order of preference.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] ApplicationProtocol { get => Client.ApplicationProtocol; set => Client.ApplicationProtocol = value; }

        /// <summary>TLS: the versions allowed (Tls12, Tls13); by default the system's choice.</summary>
        [Parameter]
        public SslProtocols SslProtocol { get => Client.SslProtocol; set => Client.SslProtocol = value; }

        /// <summary>The local address to connect from.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public string LocalAddress { get => Client.LocalAddress; set => Client.LocalAddress = value; }

        /// <summary>The local port to connect from.</summary>
        [Parameter]
        [ValidateRange(0, 65535)]
        public int LocalPort { get => Client.LocalPort; set => Client.LocalPort = value; }

        /// <summary>Speak TLS; the server's certificate is validated unless -SkipCertificateCheck.</summary>
        [Parameter]
        public SwitchParameter UseTls { get => Client.UseTls; set => Client.UseTls = value; }

        /// <summary>The name the server's certificate must carry (default: -HostName).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ServerName { get => Client.ServerName; set => Client.ServerName = value; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get => Client.SkipCertificateCheck; set => Client.SkipCertificateCheck = value; }
    }

    /// <summary>Send-TcpMessage's and Invoke-TcpRequest's base: <see cref="FramingCmdlet"/> with the client connection parameters.</summary>
    public abstract class ClientFramingCmdlet : FramingCmdlet
    {
        internal ClientConnectionParametersWithTls Client { get; } = new ClientConnectionParametersWithTls();

        /// <summary>TLS: the certificate (with its private key) to show a server that asks for one.</summary>
        [Parameter]
        [ValidateNotNull]
        public X509Certificate2 ClientCertificate { get => Client.ClientCertificate; set => Client.ClientCertificate = value; }

        /// <summary>TLS: the client certificate from a PFX file, or a PEM file (with its key, or the key in -ClientCertificateKeyPath).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificatePath { get => Client.ClientCertificatePath; set => Client.ClientCertificatePath = value; }

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ClientCertificateKeyPath { get => Client.ClientCertificateKeyPath; set => Client.ClientCertificateKeyPath = value; }

        [Parameter]
        public SecureString ClientCertificatePassword { get => Client.ClientCertificatePassword; set => Client.ClientCertificatePassword = value; }

        /// <summary>TLS: a PEM bundle of the authorities to trust instead of the system's store.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TrustedCertificatePath { get => Client.TrustedCertificatePath; set => Client.TrustedCertificatePath = value; }

        /// <summary>TLS: accept only a server certificate with one of these thumbprints (or public-key pins).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] CertificateThumbprint { get => Client.CertificateThumbprint; set => Client.CertificateThumbprint = value; }

        /// <summary>TLS ALPN: the protocols to offer, in order of preference.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string[] ApplicationProtocol { get => Client.ApplicationProtocol; set => Client.ApplicationProtocol = value; }

        /// <summary>TLS: the versions allowed (Tls12, Tls13); by default the system's choice.</summary>
        [Parameter]
        public SslProtocols SslProtocol { get => Client.SslProtocol; set => Client.SslProtocol = value; }

        /// <summary>The local address to connect from.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public string LocalAddress { get => Client.LocalAddress; set => Client.LocalAddress = value; }

        /// <summary>The local port to connect from.</summary>
        [Parameter]
        [ValidateRange(0, 65535)]
        public int LocalPort { get => Client.LocalPort; set => Client.LocalPort = value; }

        /// <summary>Speak TLS; the server's certificate is validated unless -SkipCertificateCheck.</summary>
        [Parameter]
        public SwitchParameter UseTls { get => Client.UseTls; set => Client.UseTls = value; }

        /// <summary>The name the server's certificate must carry (default: -HostName).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string ServerName { get => Client.ServerName; set => Client.ServerName = value; }

        [Parameter]
        public SwitchParameter SkipCertificateCheck { get => Client.SkipCertificateCheck; set => Client.SkipCertificateCheck = value; }
    }
}

using System;
using System.Text;
using PSTcp.Framing;

namespace PSTcp
{
    /// <summary>Per-connection settings shared by servers and clients.</summary>
    public class ConnectionOptions
    {
        public const int DefaultMaxLineLength = 64 * 1024;
        public const int DefaultQueueCapacity = 10000;

        /// <summary>UTF-8 without a BOM; invalid bytes decode to U+FFFD.</summary>
        public static readonly Encoding DefaultEncoding = new UTF8Encoding(false);

        public string Name { get; set; }

        /// <summary>Longest line accepted, terminator excluded; a longer line closes the connection.</summary>
        public int MaxLineLength { get; set; } = DefaultMaxLineLength;

        public Encoding Encoding { get; set; } = DefaultEncoding;

        public int QueueCapacity { get; set; } = DefaultQueueCapacity;

        /// <summary>
        /// What a full queue does. Unless set: DropOldest, but Wait for a Raw client connection,
        /// whose byte stream a stream read must get without a gap.
        /// </summary>
        public QueueFullMode QueueFullMode
        {
            get => _queueFullMode ?? (Framing == FramingKind.Raw && !(this is TcpServerOptions) ? QueueFullMode.Wait : QueueFullMode.DropOldest);
            set => _queueFullMode = value;
        }

        private QueueFullMode? _queueFullMode;

        /// <summary>Most bytes of Data the queue holds (beside <see cref="QueueCapacity"/> messages); the same full-mode applies.</summary>
        public long QueueByteLimit { get; set; } = MessageQueue.DefaultByteLimit;

        /// <summary>Client side: speak TLS, validating the server's certificate against <see cref="TlsServerName"/>.</summary>
        public bool UseTls { get; set; }

        /// <summary>The name the server's certificate must carry; the host name when null.</summary>
        public string TlsServerName { get; set; }

        /// <summary>Accept any server certificate (self-signed test certificates).</summary>
        public bool SkipCertificateCheck { get; set; }

        /// <summary>A connection that receives nothing this long is closed; zero means never.</summary>
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

        /// <summary>How the byte stream is cut into messages.</summary>
        public FramingKind Framing { get; set; } = FramingKind.Line;

        /// <summary>Delimiter framing: the delimiter as bytes (matched as is). Set this or <see cref="DelimiterText"/>.</summary>
        public byte[] Delimiter { get; set; }

        /// <summary>Delimiter framing: the delimiter as text, matched as <see cref="Encoding"/> writes it.</summary>
        public string DelimiterText { get; set; }

        /// <summary>LengthPrefix framing: 1, 2, 4 or 8 bytes.</summary>
        public int PrefixSize { get; set; } = 4;

        /// <summary>LengthPrefix framing: the prefix's byte order.</summary>
        public ByteOrder ByteOrder { get; set; } = ByteOrder.BigEndian;

        /// <summary>FixedLength framing: every message's length in bytes.</summary>
        public int MessageLength { get; set; }

        /// <summary>LengthPrefix framing: bytes before the length field (kept in the message).</summary>
        public int PrefixOffset { get; set; }

        /// <summary>LengthPrefix framing: added to the length field's value to give the bytes after the field.</summary>
        public int LengthAdjustment { get; set; }

        /// <summary>LengthPrefix framing: a binary integer of <see cref="PrefixSize"/> bytes, or a varint.</summary>
        public PrefixEncoding PrefixEncoding { get; set; } = PrefixEncoding.Binary;

        /// <summary>Headers framing: the header naming the body's length.</summary>
        public string LengthHeader { get; set; } = "Content-Length";

        /// <summary>Marker framing: the bytes each message starts with (none when empty).</summary>
        public byte[] StartMarker { get; set; }

        /// <summary>Marker framing: the bytes each message ends with.</summary>
        public byte[] EndMarker { get; set; }

        /// <summary>Copies the framing settings (framing, limit, encoding and each framing's parameters) to <paramref name="other"/>.</summary>
        public void CopyFramingTo(ConnectionOptions other)
        {
            other.Encoding = Encoding;
            other.MaxLineLength = MaxLineLength;
            other.Framing = Framing;
            other.Delimiter = Delimiter;
            other.DelimiterText = DelimiterText;
            other.PrefixSize = PrefixSize;
            other.ByteOrder = ByteOrder;
            other.MessageLength = MessageLength;
            other.PrefixOffset = PrefixOffset;
            other.LengthAdjustment = LengthAdjustment;
            other.PrefixEncoding = PrefixEncoding;
            other.LengthHeader = LengthHeader;
            other.StartMarker = StartMarker;
            other.EndMarker = EndMarker;
        }

        /// <summary>Client side: send a PROXY protocol header of this version first (None: don't).</summary>
        public ProxyProtocolVersion SendProxyProtocol { get; set; } = ProxyProtocolVersion.None;

        /// <summary>Client side: the certificate (with its private key) offered when the server asks for one.</summary>
        public System.Security.Cryptography.X509Certificates.X509Certificate2 ClientCertificate { get; set; }

        /// <summary>
        /// The certificate authorities the peer's certificate must chain to, instead of the system's
        /// store (a client checks the server's, a server the clients'); null uses the system's store.
        /// </summary>
        public System.Security.Cryptography.X509Certificates.X509Certificate2Collection TrustedCertificates { get; set; }

        /// <summary>
        /// Client side: pins. The server's certificate must match one (SHA-1 or SHA-256 thumbprint in
        /// hex, or the SHA-256 of its public key as "sha256//BASE64"); a match stands in for the chain
        /// and name checks.
        /// </summary>
        public System.Collections.Generic.IReadOnlyList<string> CertificateThumbprints { get; set; }

        /// <summary>ALPN: the protocols offered (a client) or accepted (a server), in order of preference.</summary>
        public System.Collections.Generic.IReadOnlyList<string> ApplicationProtocols { get; set; }

        /// <summary>The TLS versions allowed; None lets the operating system choose.</summary>
        public System.Security.Authentication.SslProtocols SslProtocols { get; set; } = System.Security.Authentication.SslProtocols.None;

        /// <summary>Client side: connect through this proxy (socks5://, socks4a://, socks4://, http:// CONNECT).</summary>
        public Uri Proxy { get; set; }

        /// <summary>Client side: the proxy's user name and password (overrides those in <see cref="Proxy"/>).</summary>
        public System.Net.NetworkCredential ProxyCredential { get; set; }

        /// <summary>A Unix domain socket's path instead of an address and port (a server listens there, a client connects there).</summary>
        public string UnixSocketPath { get; set; }

        /// <summary>Client side: the local address to connect from; null lets the OS choose.</summary>
        public string LocalAddress { get; set; }

        /// <summary>Client side: the local port to connect from; 0 lets the OS choose.</summary>
        public int LocalPort { get; set; }

        internal void Validate()
        {
            if (MaxLineLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxLineLength), "MaxLineLength must be at least 1.");
            if (QueueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(QueueCapacity), "QueueCapacity must be at least 1.");
            if (QueueByteLimit < 1) throw new ArgumentOutOfRangeException(nameof(QueueByteLimit), "QueueByteLimit must be at least 1.");
            if (IdleTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(IdleTimeout), "IdleTimeout can't be negative.");
            if (Encoding == null) throw new ArgumentNullException(nameof(Encoding));
            if (LocalPort < 0 || LocalPort > 65535) throw new ArgumentOutOfRangeException(nameof(LocalPort), "LocalPort must be 0 to 65535.");
            if (UnixSocketPath != null && (LocalAddress != null || LocalPort != 0))
                throw new ArgumentException("A Unix domain socket has no local address or port.", nameof(LocalAddress));
            if (UnixSocketPath != null && Proxy != null)
                throw new ArgumentException("A proxy connects to a host and port, not to a Unix domain socket.", nameof(Proxy));
        }
    }

    /// <summary>Whether a TLS server asks its clients for a certificate.</summary>
    public enum ClientCertificateMode
    {
        /// <summary>Don't ask.</summary>
        None,

        /// <summary>Ask; a client may send none, but one it sends must be valid.</summary>
        Allow,

        /// <summary>Ask, and refuse a client that sends none or an invalid one.</summary>
        Require,
    }

    /// <summary>Settings of a <see cref="TcpServer"/>.</summary>
    public sealed class TcpServerOptions : ConnectionOptions
    {
        public const int DefaultPort = 8888;
        public const int DefaultMaxConnections = 10000;

        public string Address { get; set; } = "127.0.0.1";

        public int Port { get; set; } = DefaultPort;

        /// <summary>Connections beyond this are accepted and closed at once.</summary>
        public int MaxConnections { get; set; } = DefaultMaxConnections;

        /// <summary>Serve TLS with this certificate (it must have its private key); null serves plain TCP.</summary>
        public System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate { get; set; }

        /// <summary>Whether TLS clients are asked for a certificate, and whether one is required.</summary>
        public ClientCertificateMode ClientCertificateMode { get; set; } = ClientCertificateMode.None;

        /// <summary>
        /// SNI: certificates by the server name a client asks for (a leading "*." matches one label);
        /// <see cref="Certificate"/> serves every other name.
        /// </summary>
        public System.Collections.Generic.IDictionary<string, System.Security.Cryptography.X509Certificates.X509Certificate2> CertificatesByServerName { get; set; }

        /// <summary>A TLS client that hasn't finished its handshake by then is closed.</summary>
        public TimeSpan TlsHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Peers allowed to connect; null or empty allows everyone.</summary>
        public System.Collections.Generic.IReadOnlyList<AddressRange> AllowedRemoteAddresses { get; set; }

        /// <summary>False for an echo-only server: lines are handled but not queued for consumers.</summary>
        public bool QueueMessages { get; set; } = true;

        /// <summary>Each connection must start with a PROXY protocol v1 or v2 header from a trusted proxy.</summary>
        public bool ProxyProtocol { get; set; }

        /// <summary>Where PROXY headers are accepted from; null or empty means loopback only.</summary>
        public System.Collections.Generic.IReadOnlyList<AddressRange> TrustedProxies { get; set; }

        /// <summary>The <see cref="TcpMessage.Direction"/> of messages from accepted connections (a relay's are ClientToTarget).</summary>
        public MessageDirection AcceptedDirection { get; set; } = MessageDirection.Inbound;

        /// <summary>What Format-List shows for a server's Options: the settings a user chose, in one line.</summary>
        public override string ToString() =>
            (UnixSocketPath != null ? $"unix:{UnixSocketPath}" : $"{Address}:{Port}") + $", {Framing}, max {MaxLineLength:N0} B, {MaxConnections:N0} connections, " +
            (QueueMessages ? $"queue {QueueCapacity:N0} {QueueFullMode}" : "no queue") +
            (IdleTimeout > TimeSpan.Zero ? $", idle {IdleTimeout}" : string.Empty) +
            (Certificate != null ? ", TLS" : string.Empty) +
            (ProxyProtocol ? ", PROXY protocol" : string.Empty);

        /// <summary>How long a stop waits for connections to finish what they read.</summary>
        public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(5);
    }
}

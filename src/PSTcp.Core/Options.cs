using System;
using System.Text;

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

        public QueueFullMode QueueFullMode { get; set; } = QueueFullMode.DropOldest;

        /// <summary>Client side: speak TLS, validating the server's certificate against <see cref="TlsServerName"/>.</summary>
        public bool UseTls { get; set; }

        /// <summary>The name the server's certificate must carry; the host name when null.</summary>
        public string TlsServerName { get; set; }

        /// <summary>Accept any server certificate (self-signed test certificates).</summary>
        public bool SkipCertificateCheck { get; set; }

        /// <summary>A connection that receives nothing this long is closed; zero means never.</summary>
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

        internal void Validate()
        {
            if (MaxLineLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxLineLength), "MaxLineLength must be at least 1.");
            if (QueueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(QueueCapacity), "QueueCapacity must be at least 1.");
            if (IdleTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(IdleTimeout), "IdleTimeout can't be negative.");
            if (Encoding == null) throw new ArgumentNullException(nameof(Encoding));
        }
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

        /// <summary>A TLS client that hasn't finished its handshake by then is closed.</summary>
        public TimeSpan TlsHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>Peers allowed to connect; null or empty allows everyone.</summary>
        public System.Collections.Generic.IReadOnlyList<AddressRange> AllowedRemoteAddresses { get; set; }

        /// <summary>False for an echo-only server: lines are handled but not queued for consumers.</summary>
        public bool QueueMessages { get; set; } = true;

        /// <summary>How long a stop waits for connections to finish what they read.</summary>
        public TimeSpan StopTimeout { get; set; } = TimeSpan.FromSeconds(5);
    }
}

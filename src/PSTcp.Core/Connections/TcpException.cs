using System;

namespace PSTcp
{
    /// <summary>The stable kinds of failure the core reports; the cmdlets turn them into error ids.</summary>
    public enum TcpErrorKind
    {
        PortInUse,
        AddressNotAvailable,
        HostNotFound,
        ConnectionRefused,
        ConnectTimeout,
        ConnectionClosed,
        LineTooLong,
        ReceiveTimeout,
        ServerNotFound,
        ConnectionNotFound,
        ConnectionReset,
        SocketError,
        TlsHandshakeFailed,
        CertificateInvalid,
        SlowReceiver,
        HandlerFailed,
        ProxyFailed,
        ProxyAuthenticationFailed,
        /// <summary>A stream read met a gap: the source's queue dropped messages of that stream.</summary>
        BytesDropped,
        /// <summary>A replayed connection sent what its recording does not have (Start-TcpServer -ReplayPath, a replaying relay).</summary>
        ReplayMiss,
        /// <summary>A recording file (-ReplayPath, -RecordPath) is malformed or unreadable.</summary>
        RecordingInvalid,
        /// <summary>No route to the host (EHOSTUNREACH, ENETUNREACH; a blackhole route; on a LAN, a host that is down).</summary>
        HostUnreachable,
        /// <summary>A firewall or a prohibit route refused the connection (EACCES, EPERM): not the host's answer.</summary>
        ConnectionFiltered,
    }

    /// <summary>A failure of the core with a stable <see cref="Kind"/>.</summary>
    public sealed class TcpException : Exception
    {
        public TcpException(TcpErrorKind kind, string message, Exception inner = null)
            : base(message, inner)
        {
            Kind = kind;
        }

        public TcpErrorKind Kind { get; }
    }
}

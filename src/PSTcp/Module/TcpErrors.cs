using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>The one place core failures become ErrorRecords with stable ids.</summary>
    internal static class TcpErrors
    {
        public static ErrorRecord From(TcpException error, object target) =>
            new ErrorRecord(error, ErrorId(error.Kind), Category(error.Kind), target);

        /// <summary>
        /// The documented ids (about_PSTcp, ERRORS). A reset or other failure of an established connection is, to a
        /// script, a connection that closed under it.
        /// </summary>
        private static string ErrorId(TcpErrorKind kind) =>
            kind == TcpErrorKind.ConnectionReset || kind == TcpErrorKind.SocketError ? nameof(TcpErrorKind.ConnectionClosed) : kind.ToString();

        public static ErrorRecord From(TcpErrorKind kind, string message, object target) =>
            From(new TcpException(kind, message), target);

        /// <summary>Wraps anything else (a bad argument the core rejected, …) with a generic id.</summary>
        public static ErrorRecord From(Exception error, object target) =>
            error is TcpException tcp ? From(tcp, target)
            : error is ArgumentException ? new ErrorRecord(error, InvalidArgumentId, ErrorCategory.InvalidArgument, target)
            : new ErrorRecord(error, TcpErrorId, ErrorCategory.NotSpecified, target);

        // The ids that are not a TcpErrorKind: cmdlet-side refusals. Use these, never literals.
        public const string InvalidArgumentId = "InvalidArgument";
        public const string TcpErrorId = "TcpError";
        public const string NotAFileSystemPath = "NotAFileSystemPath";
        public const string PathNotFound = "PathNotFound";
        public const string CertificateConflict = "CertificateConflict";
        public const string CertificateInvalid = nameof(TcpErrorKind.CertificateInvalid);
        public const string InvalidAddressRange = "InvalidAddressRange";
        public const string ServerKeepsNoMessages = "ServerKeepsNoMessages";

        /// <summary>A parameter value the cmdlet refuses: InvalidArgument.</summary>
        public static ErrorRecord InvalidArgument(string message, object target) =>
            new ErrorRecord(new ArgumentException(message), InvalidArgumentId, ErrorCategory.InvalidArgument, target);

        /// <summary>Any cmdlet-side failure with one of the ids above.</summary>
        public static ErrorRecord Record(Exception error, string id, ErrorCategory category, object target) =>
            new ErrorRecord(error, id, category, target);

        private static ErrorCategory Category(TcpErrorKind kind)
        {
            switch (kind)
            {
                case TcpErrorKind.PortInUse: return ErrorCategory.ResourceUnavailable;
                case TcpErrorKind.AddressNotAvailable: return ErrorCategory.InvalidArgument;
                case TcpErrorKind.HostNotFound: return ErrorCategory.ObjectNotFound;
                case TcpErrorKind.ConnectTimeout: return ErrorCategory.OperationTimeout;
                case TcpErrorKind.ReceiveTimeout: return ErrorCategory.OperationTimeout;
                case TcpErrorKind.LineTooLong: return ErrorCategory.LimitsExceeded;
                case TcpErrorKind.ServerNotFound: return ErrorCategory.ObjectNotFound;
                case TcpErrorKind.ConnectionNotFound: return ErrorCategory.ObjectNotFound;
                case TcpErrorKind.ConnectionClosed: return ErrorCategory.ConnectionError;
                case TcpErrorKind.TlsHandshakeFailed: return ErrorCategory.ProtocolError;
                case TcpErrorKind.CertificateInvalid: return ErrorCategory.SecurityError;
                case TcpErrorKind.ProxyAuthenticationFailed: return ErrorCategory.AuthenticationError;
                case TcpErrorKind.ProxyFailed: return ErrorCategory.ConnectionError;
                case TcpErrorKind.BytesDropped: return ErrorCategory.ReadError;
                case TcpErrorKind.HostUnreachable: return ErrorCategory.ConnectionError;
                case TcpErrorKind.ConnectionFiltered: return ErrorCategory.PermissionDenied;
                default: return ErrorCategory.ConnectionError;
            }
        }
    }
}

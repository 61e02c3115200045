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
        /// <summary>
        /// A bind error (PortInUse) where the port belongs to a server of this PowerShell session:
        /// the message names it and the command that frees it, which is also the record's
        /// recommended action. Other errors, and ports held by other programs, as <see cref="From(Exception, object)"/>.
        /// </summary>
        public static ErrorRecord BindFailed(Exception error, object target, string address, int port, string unixPath)
        {
            var holder = error is TcpException tcp && tcp.Kind == TcpErrorKind.PortInUse ? TcpRegistry.PortHolder(address, port, unixPath) : null;
            if (holder == null) return From(error, target);
            var stop = StopCommand(holder);
            var where = unixPath != null ? "unix:" + unixPath : $"Port {port} on {address}";
            var message = $"{where} is already in use by {holder.Name} (Id {holder.Id}), a server of this PowerShell session" +
                $" listening on {(holder.UnixSocketPath != null ? "unix:" + holder.UnixSocketPath : holder.LocalEndPoint?.ToString())}. Stop it first: {stop}";
            var record = From(new TcpException(TcpErrorKind.PortInUse, message, error), target);
            record.ErrorDetails = new ErrorDetails(message) { RecommendedAction = stop };
            return record;
        }

        /// <summary>The command that stops this server: by name when the name is its own, else by id.</summary>
        internal static string StopCommand(TcpServer server)
        {
            bool unique = System.Linq.Enumerable.Count(TcpRegistry.Servers, s => string.Equals(s.Name, server.Name, StringComparison.OrdinalIgnoreCase)) == 1;
            bool plain = unique && !System.Management.Automation.WildcardPattern.ContainsWildcardCharacters(server.Name) &&
                System.Text.RegularExpressions.Regex.IsMatch(server.Name, @"^[\w.-]+$");
            if (plain) return $"Stop-TcpServer -Name {server.Name}";
            if (unique && !System.Management.Automation.WildcardPattern.ContainsWildcardCharacters(server.Name)) return $"Stop-TcpServer -Name '{server.Name.Replace("'", "''")}'";
            return $"Stop-TcpServer -Id {server.Id}";
        }

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
                case TcpErrorKind.ReplayMiss: return ErrorCategory.InvalidData;
                case TcpErrorKind.RecordingInvalid: return ErrorCategory.InvalidData;
                case TcpErrorKind.HostUnreachable: return ErrorCategory.ConnectionError;
                case TcpErrorKind.ConnectionFiltered: return ErrorCategory.PermissionDenied;
                default: return ErrorCategory.ConnectionError;
            }
        }
    }
}

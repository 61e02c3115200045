using System;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// Connects through a SOCKS5 (RFC 1928, user/password RFC 1929), SOCKS4a/SOCKS4 or HTTP CONNECT
    /// proxy: the socket it returns is a tunnel to the target. Host names go to the proxy to resolve
    /// (SOCKS5, SOCKS4a, HTTP); SOCKS4 has no names, so they are resolved here.
    /// </summary>
    internal static class ProxyClient
    {
        public static bool IsSupported(Uri proxy) => SchemeOf(proxy) != null;

        private const string TargetStatusKey = "PSTcp.ProxyTargetStatus";

        /// <summary>
        /// A ProxyFailed error for the proxy's answer that it could not reach the target, noting what
        /// that answer says about the target (for Test-TcpEndpoint -Proxy).
        /// </summary>
        private static TcpException TargetFailed(string message, EndpointStatus status)
        {
            var e = new TcpException(TcpErrorKind.ProxyFailed, message);
            e.Data[TargetStatusKey] = status;
            return e;
        }

        /// <summary>What the proxy said about the target, when the failure is its answer about the target; null when the proxy itself failed.</summary>
        public static EndpointStatus? TargetStatusOf(Exception e) => e.Data[TargetStatusKey] as EndpointStatus?;

        /// <summary>The proxy's host (an IPv6 address without brackets) and port (its scheme's default when none).</summary>
        public static string HostOf(Uri proxy) => proxy.HostNameType == UriHostNameType.IPv6 ? proxy.DnsSafeHost.Trim('[', ']') : proxy.Host;

        public static int PortNumberOf(Uri proxy) => PortOf(proxy);

        private static string SchemeOf(Uri proxy)
        {
            switch (proxy.Scheme.ToLowerInvariant())
            {
                case "socks5":
                case "socks5h":
                    return "socks5";
                case "socks4a":
                    return "socks4a";
                case "socks4":
                    return "socks4";
                case "http":
                    return "http";
                default:
                    return null;
            }
        }

        /// <summary>Checks a proxy URI's form; throws ArgumentException naming what is wrong.</summary>
        public static void Validate(Uri proxy)
        {
            if (proxy == null) return;
            if (!proxy.IsAbsoluteUri || string.IsNullOrEmpty(proxy.Host))
                throw new ArgumentException($"The proxy '{proxy}' needs a scheme and a host, such as socks5://127.0.0.1:1080.", nameof(proxy));
            if (SchemeOf(proxy) == null)
                throw new ArgumentException($"The proxy scheme '{proxy.Scheme}' is not supported: use socks5://, socks4a://, socks4:// or http://.", nameof(proxy));
        }

        /// <summary>Where the proxy is, for messages: its URI without credentials.</summary>
        public static string Describe(Uri proxy) => $"{proxy.Scheme}://{(proxy.HostNameType == UriHostNameType.IPv6 ? "[" + proxy.DnsSafeHost + "]" : proxy.Host)}:{PortOf(proxy)}";

        private static int PortOf(Uri proxy) => proxy.IsDefaultPort || proxy.Port <= 0 ? (SchemeOf(proxy) == "http" ? 8080 : 1080) : proxy.Port;

        /// <summary>The user name and password: <paramref name="credential"/>, else the URI's user info, else none.</summary>
        private static NetworkCredential CredentialOf(Uri proxy, NetworkCredential credential)
        {
            if (credential != null) return credential;
            if (string.IsNullOrEmpty(proxy.UserInfo)) return null;
            var parts = proxy.UserInfo.Split(new[] { ':' }, 2);
            return new NetworkCredential(Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : string.Empty);
        }

        /// <summary>Performs the proxy's handshake on <paramref name="socket"/> (already connected to the proxy).</summary>
        public static async Task HandshakeAsync(Socket socket, Uri proxy, NetworkCredential credential, string host, int port, CancellationToken cancellationToken)
        {
            var where = Describe(proxy);
            var login = CredentialOf(proxy, credential);
            host = host.Trim('[', ']');
            using (cancellationToken.Register(socket.Dispose))
            {
                try
                {
                    switch (SchemeOf(proxy))
                    {
                        case "socks5":
                            await Socks5Async(socket, where, login, host, port).ConfigureAwait(false);
                            break;
                        case "socks4a":
                        case "socks4":
                            await Socks4Async(socket, where, login, host, port, SchemeOf(proxy) == "socks4a").ConfigureAwait(false);
                            break;
                        default:
                            await HttpConnectAsync(socket, where, login, host, port).ConfigureAwait(false);
                            break;
                    }
                }
                catch (Exception e) when (cancellationToken.IsCancellationRequested && !(e is OperationCanceledException))
                {
                    throw new OperationCanceledException(cancellationToken);
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
                {
                    throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} closed the connection during its handshake: {e.Message}", e);
                }
            }
        }

        private static async Task Socks5Async(Socket socket, string where, NetworkCredential login, string host, int port)
        {
            await SendAsync(socket, login == null ? new byte[] { 5, 1, 0 } : new byte[] { 5, 2, 0, 2 }).ConfigureAwait(false);
            var choice = await ReceiveExactAsync(socket, 2, where).ConfigureAwait(false);
            if (choice[0] != 5) throw new TcpException(TcpErrorKind.ProxyFailed, $"{where} does not speak SOCKS5 (it answered version {choice[0]}).");
            if (choice[1] == 0xFF)
            {
                throw new TcpException(TcpErrorKind.ProxyAuthenticationFailed, login == null
                    ? $"The proxy {where} requires a user name and password (in the URI, socks5://user:pass@host:port, or -ProxyCredential)."
                    : $"The proxy {where} accepts none of the offered ways to log in.");
            }

            if (choice[1] == 2)
            {
                if (login == null)
                {
                    throw new TcpException(TcpErrorKind.ProxyAuthenticationFailed, $"The proxy {where} asks for a user name and password, and none was given.");
                }

                var user = Encoding.UTF8.GetBytes(login.UserName ?? string.Empty);
                var pass = Encoding.UTF8.GetBytes(login.Password ?? string.Empty);
                if (user.Length > 255 || pass.Length > 255) throw new ArgumentException("SOCKS5 user names and passwords are at most 255 bytes.");
                var request = new byte[3 + user.Length + pass.Length];
                request[0] = 1;
                request[1] = (byte)user.Length;
                user.CopyTo(request, 2);
                request[2 + user.Length] = (byte)pass.Length;
                pass.CopyTo(request, 3 + user.Length);
                await SendAsync(socket, request).ConfigureAwait(false);
                var status = await ReceiveExactAsync(socket, 2, where).ConfigureAwait(false);
                if (status[1] != 0)
                {
                    throw new TcpException(TcpErrorKind.ProxyAuthenticationFailed, $"The proxy {where} refused the user name and password for '{login.UserName}'.");
                }
            }
            else if (choice[1] != 0)
            {
                throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} chose an unknown way to log in ({choice[1]}).");
            }

            byte[] address;
            byte type;
            if (IPAddress.TryParse(host, out var literal))
            {
                address = literal.GetAddressBytes();
                type = literal.AddressFamily == AddressFamily.InterNetworkV6 ? (byte)4 : (byte)1;
            }
            else
            {
                var name = Encoding.ASCII.GetBytes(host);
                if (name.Length > 255) throw new ArgumentException("A SOCKS5 host name is at most 255 bytes.");
                address = new byte[1 + name.Length];
                address[0] = (byte)name.Length;
                name.CopyTo(address, 1);
                type = 3;
            }

            var connect = new byte[4 + address.Length + 2];
            connect[0] = 5;
            connect[1] = 1; // CONNECT
            connect[3] = type;
            address.CopyTo(connect, 4);
            connect[connect.Length - 2] = (byte)(port >> 8);
            connect[connect.Length - 1] = (byte)port;
            await SendAsync(socket, connect).ConfigureAwait(false);

            var reply = await ReceiveExactAsync(socket, 4, where).ConfigureAwait(false);
            if (reply[1] != 0)
            {
                throw TargetFailed($"The proxy {where} could not connect to {host}:{port}: {Socks5Reply(reply[1])}.", Socks5Status(reply[1]));
            }

            // The bound address, which we don't need, then the port.
            int rest = reply[3] == 1 ? 4 : reply[3] == 4 ? 16 : reply[3] == 3 ? (await ReceiveExactAsync(socket, 1, where).ConfigureAwait(false))[0] : -1;
            if (rest < 0) throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} sent an unknown address type ({reply[3]}).");
            await ReceiveExactAsync(socket, rest + 2, where).ConfigureAwait(false);
        }

        /// <summary>What a SOCKS5 reply says about the target: 2 not allowed, 3/4 unreachable, 5 refused, 6 timed out; others Refused.</summary>
        private static EndpointStatus Socks5Status(byte code)
        {
            switch (code)
            {
                case 2: return EndpointStatus.Filtered;
                case 3:
                case 4: return EndpointStatus.Unreachable;
                case 6: return EndpointStatus.TimedOut;
                default: return EndpointStatus.Refused;
            }
        }

        private static string Socks5Reply(byte code)
        {
            switch (code)
            {
                case 1: return "general failure";
                case 2: return "not allowed by its rules";
                case 3: return "network unreachable";
                case 4: return "host unreachable";
                case 5: return "connection refused";
                case 6: return "TTL expired";
                case 7: return "command not supported";
                case 8: return "address type not supported";
                default: return $"error {code}";
            }
        }

        private static async Task Socks4Async(Socket socket, string where, NetworkCredential login, string host, int port, bool remoteNames)
        {
            IPAddress address = null;
            if (IPAddress.TryParse(host, out var literal))
            {
                if (literal.AddressFamily != AddressFamily.InterNetwork) throw new TcpException(TcpErrorKind.ProxyFailed, $"SOCKS4 carries only IPv4 addresses, not {host}.");
                address = literal;
            }
            else if (!remoteNames)
            {
                foreach (var candidate in await Dns.GetHostAddressesAsync(host).ConfigureAwait(false))
                {
                    if (candidate.AddressFamily == AddressFamily.InterNetwork)
                    {
                        address = candidate;
                        break;
                    }
                }

                if (address == null) throw new TcpException(TcpErrorKind.HostNotFound, $"'{host}' has no IPv4 address for SOCKS4 (socks4a:// lets the proxy resolve it).");
            }

            var user = Encoding.UTF8.GetBytes(login?.UserName ?? string.Empty);
            var name = address == null ? Encoding.ASCII.GetBytes(host) : new byte[0];
            var request = new byte[8 + user.Length + 1 + (address == null ? name.Length + 1 : 0)];
            request[0] = 4;
            request[1] = 1;
            request[2] = (byte)(port >> 8);
            request[3] = (byte)port;
            (address?.GetAddressBytes() ?? new byte[] { 0, 0, 0, 1 }).CopyTo(request, 4);
            user.CopyTo(request, 8);
            if (address == null) name.CopyTo(request, 9 + user.Length);
            await SendAsync(socket, request).ConfigureAwait(false);
            var reply = await ReceiveExactAsync(socket, 8, where).ConfigureAwait(false);
            switch (reply[1])
            {
                case 0x5A:
                    return;
                case 0x5C:
                case 0x5D:
                    throw new TcpException(TcpErrorKind.ProxyAuthenticationFailed, $"The proxy {where} refused the user id '{login?.UserName}' (identd check, code {reply[1]:X2}).");
                default:
                    throw TargetFailed($"The proxy {where} refused or failed the connection to {host}:{port} (code {reply[1]:X2}).", EndpointStatus.Refused);
            }
        }

        private static async Task HttpConnectAsync(Socket socket, string where, NetworkCredential login, string host, int port)
        {
            var authority = host.IndexOf(':') >= 0 ? $"[{host}]:{port}" : $"{host}:{port}";
            var request = new StringBuilder()
                .Append("CONNECT ").Append(authority).Append(" HTTP/1.1\r\n")
                .Append("Host: ").Append(authority).Append("\r\n");
            if (login != null)
            {
                var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{login.UserName}:{login.Password}"));
                request.Append("Proxy-Authorization: Basic ").Append(token).Append("\r\n");
            }

            request.Append("\r\n");
            await SendAsync(socket, Encoding.ASCII.GetBytes(request.ToString())).ConfigureAwait(false);

            // Byte by byte up to the blank line: whatever follows belongs to the tunnel.
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && !head.ToString().EndsWith("\n\n", StringComparison.Ordinal))
            {
                if (head.Length > 16 * 1024) throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} sent an answer over 16 KB long.");
                int n = await socket.ReceiveAsync(new ArraySegment<byte>(one), SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new TcpException(TcpErrorKind.ProxyFailed, head.Length == 0
                        ? $"The proxy {where} closed the connection without answering CONNECT {authority}."
                        : $"The proxy {where} closed the connection in the middle of its answer.");
                }

                head.Append((char)one[0]);
            }

            var status = head.ToString().Split(new[] { "\r\n", "\n" }, StringSplitOptions.None)[0];
            var parts = status.Split(new[] { ' ' }, 3);
            if (parts.Length < 2 || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(parts[1], out int code))
            {
                throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} did not answer in HTTP: '{status}'.");
            }

            // 407 is the standard answer; tinyproxy (1.11) answers a wrong login with 401. Before the
            // tunnel exists, any 401 is the proxy's own.
            if (code == 407 || code == 401)
            {
                throw new TcpException(TcpErrorKind.ProxyAuthenticationFailed, login == null
                    ? $"The proxy {where} requires a user name and password ({status}); give them in the URI or with -ProxyCredential."
                    : $"The proxy {where} refused the user name and password for '{login.UserName}' ({status}).");
            }

            if (code < 200 || code > 299)
            {
                throw TargetFailed($"The proxy {where} refused CONNECT {authority}: {status}.", HttpStatus(code));
            }
        }

        /// <summary>
        /// What a CONNECT's failure status says about the target: 403 the proxy's rules (Filtered),
        /// 504 a gateway timeout (TimedOut), 502/503 and the rest refused or failed (Refused).
        /// </summary>
        private static EndpointStatus HttpStatus(int code)
        {
            switch (code)
            {
                case 403: return EndpointStatus.Filtered;
                case 504: return EndpointStatus.TimedOut;
                default: return EndpointStatus.Refused;
            }
        }

        private static async Task SendAsync(Socket socket, byte[] bytes)
        {
            for (int sent = 0; sent < bytes.Length;)
            {
                sent += await socket.SendAsync(new ArraySegment<byte>(bytes, sent, bytes.Length - sent), SocketFlags.None).ConfigureAwait(false);
            }
        }

        private static async Task<byte[]> ReceiveExactAsync(Socket socket, int count, string where)
        {
            var buffer = new byte[count];
            for (int read = 0; read < count;)
            {
                int n = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, read, count - read), SocketFlags.None).ConfigureAwait(false);
                if (n == 0) throw new TcpException(TcpErrorKind.ProxyFailed, $"The proxy {where} closed the connection during its handshake.");
                read += n;
            }

            return buffer;
        }
    }

    /// <summary>Unix domain sockets, through the runtime's UnixDomainSocketEndPoint (not in netstandard2.0).</summary>
    internal static class UnixSockets
    {
        private static readonly Type s_endPoint = typeof(Socket).Assembly.GetType("System.Net.Sockets.UnixDomainSocketEndPoint");

        public static EndPoint EndPoint(string path)
        {
            if (s_endPoint == null) throw new PlatformNotSupportedException("Unix domain sockets need PowerShell 7 (.NET Core 2.1 or later).");
            try
            {
                return (EndPoint)Activator.CreateInstance(s_endPoint, path);
            }
            catch (System.Reflection.TargetInvocationException e) when (e.InnerException is ArgumentException inner)
            {
                throw new ArgumentException($"'{path}' can't be a Unix domain socket's path: {inner.Message}", inner);
            }
        }

        public static bool IsUnix(Socket socket) => socket.AddressFamily == AddressFamily.Unix;

        public static Socket NewSocket() => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    }
}

namespace PSTcp
{
    /// <summary>A listening Unix domain socket: its file is made at start and removed at stop.</summary>
    internal static class UnixListener
    {
        public static Socket Listen(string path)
        {
            var endPoint = UnixSockets.EndPoint(path);
            if (System.IO.File.Exists(path))
            {
                // A live server's socket is in use; a dead one's file is left over, and goes.
                using (var probe = UnixSockets.NewSocket())
                {
                    try
                    {
                        probe.Connect(endPoint);
                        throw new TcpException(TcpErrorKind.PortInUse, $"Another program already listens at unix:{path}.");
                    }
                    catch (SocketException)
                    {
                        TryDelete(path);
                    }
                }
            }

            var listener = UnixSockets.NewSocket();
            try
            {
                listener.Bind(endPoint);
                listener.Listen(512);
                return listener;
            }
            catch (SocketException e)
            {
                listener.Dispose();
                throw e.SocketErrorCode == SocketError.AddressAlreadyInUse
                    ? new TcpException(TcpErrorKind.PortInUse, $"unix:{path} is already in use.", e)
                    : new TcpException(TcpErrorKind.AddressNotAvailable, $"Can't listen at unix:{path}: {e.Message}", e);
            }
        }

        public static void Remove(string path)
        {
            if (path != null) TryDelete(path);
        }

        private static void TryDelete(string path)
        {
            try
            {
                System.IO.File.Delete(path);
            }
            catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException)
            {
                // Not ours to remove, or already gone.
            }
        }
    }
}

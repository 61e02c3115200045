using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>How one connection attempt of <see cref="EndpointProbe"/> ended.</summary>
    public enum EndpointStatus
    {
        /// <summary>The connection was accepted (then closed at once, nothing sent).</summary>
        Open,
        /// <summary>The host answered no (a reset: nothing listens on the port), or an error not listed here (see <see cref="TcpEndpointStatus.Error"/>).</summary>
        Refused,
        /// <summary>No answer within the timeout (a firewall that drops, a full backlog, a slow DNS).</summary>
        TimedOut,
        /// <summary>The name did not resolve.</summary>
        HostNotFound,
        /// <summary>
        /// No route to the host: "No route to host" (EHOSTUNREACH: an unreachable route, a router's
        /// ICMP host-unreachable, or on a LAN a host that doesn't answer ARP, when that comes
        /// within the timeout), "Network is unreachable" (ENETUNREACH), or a blackhole route
        /// (Linux: EINVAL).
        /// </summary>
        Unreachable,
        /// <summary>A local firewall rule or a prohibit route refused the attempt (EACCES, EPERM): not the host's answer.</summary>
        Filtered,
    }

    /// <summary>The result of one connection attempt to a host and port.</summary>
    public sealed class TcpEndpointStatus
    {
        public TcpEndpointStatus(string hostName, IPAddress address, int port, EndpointStatus status, TimeSpan latency, string error)
            : this(hostName, address, port, status, latency, error, null)
        {
        }

        public TcpEndpointStatus(string hostName, IPAddress address, int port, EndpointStatus status, TimeSpan latency, string error, string proxy)
        {
            Proxy = proxy;
            HostName = hostName;
            Address = address;
            Port = port;
            Status = status;
            Latency = latency;
            Error = error;
        }

        /// <summary>The host name as given; for a Unix domain socket, its path (and <see cref="Port"/> 0).</summary>
        public string HostName { get; }

        /// <summary>
        /// The address that answered, or the last one tried; null when the name did not resolve, for a
        /// Unix domain socket, and through a proxy (which resolves the name itself) unless the host
        /// was an address.
        /// </summary>
        public IPAddress Address { get; }

        public int Port { get; }

        public bool Open => Status == EndpointStatus.Open;

        public EndpointStatus Status { get; }

        /// <summary>From the start of the attempt (name resolution included) to its end.</summary>
        public TimeSpan Latency { get; }

        /// <summary>Why an attempt that isn't Open failed, in the system's words; null when Open.</summary>
        public string Error { get; }

        /// <summary>The proxy the attempt went through (its URI without credentials); null when direct.</summary>
        public string Proxy { get; }

        public override string ToString() => Port == 0 ? $"unix:{HostName} {Status}" : $"{HostName}:{Port} {Status}";
    }

    /// <summary>
    /// Tries TCP connections: connect, note how it ended and how long it took, close. Every attempt
    /// ends by its deadline: netstandard2.0's ConnectAsync takes no token, so the socket is disposed
    /// at the deadline (otherwise the kernel keeps retrying the SYN for about two minutes).
    /// </summary>
    public static class EndpointProbe
    {
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

        /// <summary>
        /// Resolves <paramref name="host"/> (an address literal needs no lookup) and connects to its
        /// addresses in turn until one accepts, all within <paramref name="timeout"/>.
        /// </summary>
        public static async Task<TcpEndpointStatus> ProbeAsync(string host, int port, TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (host == null) throw new ArgumentNullException(nameof(host));
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port), "Port must be 1..65535.");
            if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "Timeout must be positive.");

            var clock = Stopwatch.StartNew();
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(timeout);
                var (status, socket) = await OpenAsync(host, port, clock, timeout, deadline.Token, cancellationToken).ConfigureAwait(false);
                socket?.Dispose();
                return status;
            }
        }

        /// <summary>Checks a proxy URI's form for <see cref="ProbeThroughProxyAsync"/>; throws ArgumentException naming what is wrong.</summary>
        public static void ValidateProxy(Uri proxy) => ProxyClient.Validate(proxy);

        /// <summary>
        /// Asks the proxy (socks5://, socks4a://, socks4://, http:// CONNECT) to connect to
        /// <paramref name="host"/>:<paramref name="port"/>, the name resolved by the proxy, all within
        /// <paramref name="timeout"/>. Open when the proxy reports success; its answer that the target
        /// failed is mapped to a status (SOCKS5: 2 Filtered, 3/4 Unreachable, 5 Refused, 6 TimedOut;
        /// HTTP: 403 Filtered, 504 TimedOut, others Refused) with the proxy's words in the error. A
        /// proxy that can't be reached, doesn't answer or refuses the login gives the status of that
        /// (Refused, TimedOut, Unreachable...) with an error that names the proxy.
        /// </summary>
        public static async Task<TcpEndpointStatus> ProbeThroughProxyAsync(string host, int port, Uri proxy, NetworkCredential credential,
            TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (host == null) throw new ArgumentNullException(nameof(host));
            if (proxy == null) throw new ArgumentNullException(nameof(proxy));
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException(nameof(port), "Port must be 1..65535.");
            if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "Timeout must be positive.");
            ProxyClient.Validate(proxy);

            var where = ProxyClient.Describe(proxy);
            IPAddress.TryParse(host.Trim('[', ']'), out var literal);
            var clock = Stopwatch.StartNew();
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(timeout);
                var (reach, socket) = await OpenAsync(ProxyClient.HostOf(proxy), ProxyClient.PortNumberOf(proxy), clock, timeout, deadline.Token, cancellationToken)
                    .ConfigureAwait(false);
                if (socket == null)
                {
                    return new TcpEndpointStatus(host, literal, port, reach.Status, clock.Elapsed, $"Can't reach the proxy {where}: {reach.Error}", where);
                }

                using (socket)
                {
                    try
                    {
                        await ProxyClient.HandshakeAsync(socket, proxy, credential, host, port, deadline.Token).ConfigureAwait(false);
                        return new TcpEndpointStatus(host, literal, port, EndpointStatus.Open, clock.Elapsed, null, where);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        return new TcpEndpointStatus(host, literal, port, EndpointStatus.TimedOut, clock.Elapsed,
                            $"The proxy {where} did not answer within {timeout.TotalSeconds:0.###} s (it may still be trying {host}:{port}).", where);
                    }
                    catch (TcpException e)
                    {
                        var target = ProxyClient.TargetStatusOf(e);
                        if (target != null)
                        {
                            // The proxy's own words about the target.
                            return new TcpEndpointStatus(host, literal, port, target.Value, clock.Elapsed, e.Message, where);
                        }

                        var status = e.Kind == TcpErrorKind.HostNotFound ? EndpointStatus.HostNotFound : EndpointStatus.Refused;
                        var message = e.Message.IndexOf("proxy", StringComparison.OrdinalIgnoreCase) >= 0 ? e.Message : $"The proxy {where} failed: {e.Message}";
                        return new TcpEndpointStatus(host, literal, port, status, clock.Elapsed, message, where);
                    }
                    catch (Exception e) when (e is ArgumentException || e is SocketException)
                    {
                        // A name too long for SOCKS, or SOCKS4's own lookup of the name failing.
                        var status = e is SocketException ? EndpointStatus.HostNotFound : EndpointStatus.Refused;
                        return new TcpEndpointStatus(host, literal, port, status, clock.Elapsed, $"The proxy {where} failed: {e.Message}", where);
                    }
                }
            }
        }

        /// <summary>
        /// Connects to the Unix domain socket at <paramref name="path"/> (a full path) within
        /// <paramref name="timeout"/>: Open when something accepts; Refused when the file is there but
        /// nobody listens (or it is not a socket, or may not be opened); HostNotFound when there is no
        /// such file. The result's HostName is the path, its Port 0.
        /// </summary>
        public static async Task<TcpEndpointStatus> ProbeUnixSocketAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (path == null) throw new ArgumentNullException(nameof(path));
            if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "Timeout must be positive.");

            var clock = Stopwatch.StartNew();
            EndPoint endPoint;
            try
            {
                endPoint = UnixSockets.EndPoint(path);
            }
            catch (Exception e) when (e is ArgumentException || e is PlatformNotSupportedException)
            {
                return new TcpEndpointStatus(path, null, 0, EndpointStatus.HostNotFound, clock.Elapsed, e.Message);
            }

            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(timeout);
                try
                {
                    using (await TcpConnection.ConnectSocketAsync(UnixSockets.NewSocket(), endPoint, deadline.Token).ConfigureAwait(false))
                    {
                        return new TcpEndpointStatus(path, null, 0, EndpointStatus.Open, clock.Elapsed, null);
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return new TcpEndpointStatus(path, null, 0, EndpointStatus.TimedOut, clock.Elapsed,
                        $"No answer within {timeout.TotalSeconds:0.###} s.");
                }
                catch (SocketException e)
                {
                    // ENOENT arrives as AddressNotAvailable; ask the file system to be sure.
                    if (!System.IO.File.Exists(path) && !System.IO.Directory.Exists(path))
                    {
                        return new TcpEndpointStatus(path, null, 0, EndpointStatus.HostNotFound, clock.Elapsed, $"No such file: {path}");
                    }

                    var message = e.SocketErrorCode == SocketError.ConnectionRefused && System.IO.File.Exists(path)
                        ? e.Message
                        : $"{e.Message} ({path})";
                    var status = e.SocketErrorCode == SocketError.TimedOut ? EndpointStatus.TimedOut : EndpointStatus.Refused;
                    return new TcpEndpointStatus(path, null, 0, status, clock.Elapsed, message);
                }
            }
        }

        /// <summary>
        /// Resolves and connects within the deadline: the status, and the connected socket when Open
        /// (the caller's to dispose), else null.
        /// </summary>
        private static async Task<(TcpEndpointStatus Status, Socket Socket)> OpenAsync(string host, int port, Stopwatch clock, TimeSpan timeout,
            CancellationToken deadline, CancellationToken cancellationToken)
        {
            IPAddress[] addresses;
            try
            {
                addresses = await ResolveAsync(host, deadline).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return (new TcpEndpointStatus(host, null, port, EndpointStatus.TimedOut, clock.Elapsed,
                    $"Resolving '{host}' took longer than {timeout.TotalSeconds:0.###} s."), null);
            }
            catch (Exception e) when (e is SocketException || e is ArgumentException)
            {
                // ArgumentException: a name no resolver takes (too long, empty labels).
                return (new TcpEndpointStatus(host, null, port, EndpointStatus.HostNotFound, clock.Elapsed, e.Message), null);
            }

            if (addresses.Length == 0)
            {
                return (new TcpEndpointStatus(host, null, port, EndpointStatus.HostNotFound, clock.Elapsed, $"'{host}' has no addresses."), null);
            }

            (TcpEndpointStatus Status, Socket Socket) last = (null, null);
            foreach (var address in addresses)
            {
                last = await ConnectAsync(host, address, port, clock, timeout, deadline, cancellationToken).ConfigureAwait(false);
                if (last.Status.Status == EndpointStatus.Open || last.Status.Status == EndpointStatus.TimedOut) break;
            }

            return last;
        }

        private static async Task<(TcpEndpointStatus Status, Socket Socket)> ConnectAsync(string host, IPAddress address, int port, Stopwatch clock,
            TimeSpan timeout, CancellationToken deadline, CancellationToken cancellationToken)
        {
            try
            {
                var socket = await TcpConnection.ConnectSocketAsync(new IPEndPoint(address, port), deadline).ConfigureAwait(false);
                return (new TcpEndpointStatus(host, address, port, EndpointStatus.Open, clock.Elapsed, null), socket);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return (new TcpEndpointStatus(host, address, port, EndpointStatus.TimedOut, clock.Elapsed,
                    $"No answer within {timeout.TotalSeconds:0.###} s."), null);
            }
            catch (SocketException e)
            {
                var status = StatusOf(e.SocketErrorCode);
                // Linux's EINVAL for a blackhole route says nothing about routes by itself.
                var message = e.SocketErrorCode == SocketError.InvalidArgument ? $"No usable route ({e.Message}: a blackhole route?)" : e.Message;
                return (new TcpEndpointStatus(host, address, port, status, clock.Elapsed, message), null);
            }
        }

        /// <summary>
        /// What a failed connect's error says about the end point: Unreachable for no route
        /// (EHOSTUNREACH, ENETUNREACH, EHOSTDOWN; EINVAL, which Linux gives for a blackhole
        /// route), Filtered for a firewall or prohibit route (EACCES, EPERM), TimedOut, and
        /// Refused for a reset and anything else.
        /// </summary>
        public static EndpointStatus StatusOf(SocketError error)
        {
            switch (error)
            {
                case SocketError.TimedOut:
                    return EndpointStatus.TimedOut;
                case SocketError.HostUnreachable:
                case SocketError.NetworkUnreachable:
                case SocketError.HostDown:
                case SocketError.InvalidArgument:
                    return EndpointStatus.Unreachable;
                case SocketError.AccessDenied:
                    return EndpointStatus.Filtered;
                default:
                    return EndpointStatus.Refused;
            }
        }

        /// <summary>
        /// Splits what a user typed for a host: <c>host</c>, <c>host:port</c>, <c>[v6]:port</c>,
        /// <c>[v6]</c>, a bare IPv6 address (its colons are not a port), or a URI such as
        /// <c>tcp://host:port</c> (a scheme's default port counts: <c>https://host</c> is 443).
        /// <paramref name="port"/> is 0 when the text names none. False, with
        /// <paramref name="error"/>, when the text is no host.
        /// </summary>
        public static bool TryParseTarget(string text, out string host, out int port, out string error)
        {
            host = null;
            port = 0;
            error = null;
            text = text?.Trim();
            if (string.IsNullOrEmpty(text))
            {
                error = "The host name is empty.";
                return false;
            }

            if (text.IndexOf("://", StringComparison.Ordinal) > 0)
            {
                if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
                {
                    error = $"'{text}' is not a URI with a host.";
                    return false;
                }

                host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
                port = uri.Port > 0 ? uri.Port : 0;
                return true;
            }

            if (text.StartsWith("[", StringComparison.Ordinal))
            {
                int close = text.IndexOf(']');
                if (close < 0 || !IPAddress.TryParse(text.Substring(1, close - 1), out _))
                {
                    error = $"'{text}' is not an IPv6 address in brackets.";
                    return false;
                }

                var rest = text.Substring(close + 1);
                if (rest.Length == 0 || (rest[0] == ':' && TryParsePort(rest.Substring(1), out port)))
                {
                    host = text.Substring(1, close - 1);
                    return true;
                }

                port = 0;
                error = $"'{text}' has no valid port after the address (1..65535).";
                return false;
            }

            int colon = text.IndexOf(':');
            if (colon < 0 || text.IndexOf(':', colon + 1) >= 0)
            {
                // No colon, or several: a name, or a bare IPv6 address.
                host = text;
                return true;
            }

            host = text.Substring(0, colon);
            if (host.Length > 0 && TryParsePort(text.Substring(colon + 1), out port)) return true;
            error = $"'{text}' is not host:port (a port is 1..65535).";
            host = null;
            port = 0;
            return false;
        }

        private static bool TryParsePort(string text, out int port) =>
            int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) && port >= 1 && port <= 65535;

        // Dns.GetHostAddressesAsync can't be cancelled either: stop waiting for it at the deadline
        // and let it finish unobserved-safe in the background.
        private static async Task<IPAddress[]> ResolveAsync(string host, CancellationToken deadline)
        {
            if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
            {
                return new[] { literal };
            }

            var lookup = Dns.GetHostAddressesAsync(host);
            if (!lookup.IsCompleted)
            {
                var gate = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                using (deadline.Register(() => gate.TrySetResult(true)))
                {
                    if (await Task.WhenAny(lookup, gate.Task).ConfigureAwait(false) != lookup)
                    {
                        _ = lookup.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
                        throw new OperationCanceledException(deadline);
                    }
                }
            }

            return await lookup.ConfigureAwait(false);
        }
    }
}

using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    public sealed partial class TcpConnection
    {
        /// <summary>
        /// Resolves <paramref name="host"/>, connects to the first address that accepts within
        /// <paramref name="timeout"/>, and starts receiving into a queue of its own.
        /// </summary>
        public static Task<TcpConnection> ConnectAsync(
            string host, int port, ConnectionOptions options, TimeSpan timeout, CancellationToken cancellationToken) =>
            ConnectAsync(host, port, options, timeout, cancellationToken, null, null, MessageDirection.Inbound, null, null, queueMessages: true);

        /// <summary>
        /// Connects like the overload above, for a relay: the connection's reads go to
        /// <paramref name="handler"/> (its <see cref="LineHandler.OnDataAsync"/> and receive-end hooks), its
        /// messages into <paramref name="queue"/> (a queue of its own when null) with <paramref name="direction"/>.
        /// </summary>
        public static Task<TcpConnection> ConnectAsync(
            string host, int port, ConnectionOptions options, TimeSpan timeout, CancellationToken cancellationToken,
            LineHandler handler, MessageQueue queue, MessageDirection direction) =>
            ConnectAsync(host, port, options, timeout, cancellationToken, handler, queue, direction, null, null, queueMessages: true);

        /// <summary>
        /// As above; a PROXY header (options.SendProxyProtocol) names <paramref name="proxySource"/> and
        /// <paramref name="proxyDestination"/> instead of the socket's own end points (a relay's client).
        /// Without <paramref name="queueMessages"/> nothing is queued at all (a -NoQueue relay's target
        /// side, whose private queue nobody would read and which would hold up to its capacity of reads).
        /// </summary>
        internal static async Task<TcpConnection> ConnectAsync(
            string host, int port, ConnectionOptions options, TimeSpan timeout, CancellationToken cancellationToken,
            LineHandler handler, MessageQueue queue, MessageDirection direction, IPEndPoint proxySource, IPEndPoint proxyDestination,
            bool queueMessages)
        {
            options.Validate();
            ProxyClient.Validate(options.Proxy);
            var target = Describe(host, port, options);
            using (var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeoutCts.CancelAfter(timeout);
                try
                {
                    var socket = await OpenSocketAsync(host, port, options, target, timeoutCts.Token).ConfigureAwait(false);
                    await SendProxyHeaderAsync(socket, options.SendProxyProtocol, proxySource, proxyDestination, timeoutCts.Token).ConfigureAwait(false);
                    var transport = await StartTransportAsync(socket, host, options, timeoutCts.Token, cancellationToken).ConfigureAwait(false);
                    // A queue of its own ends with the connection; a shared one (a relay's) lives on.
                    var connection = new TcpConnection(transport, options, queue ?? new MessageQueue(options.QueueCapacity, options.QueueFullMode, options.QueueByteLimit),
                        handler, server: null, ownsQueue: queue == null, queueMessages: queueMessages)
                    {
                        Direction = direction,
                    };
                    connection.Start();
                    return connection;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TcpException(TcpErrorKind.ConnectTimeout,
                        $"Connecting to {target} timed out after {timeout.TotalSeconds:0.###} s.");
                }
            }
        }

        /// <summary>What a connection goes to, for messages: host:port (via the proxy), or unix:path.</summary>
        private static string Describe(string host, int port, ConnectionOptions options)
        {
            if (options.UnixSocketPath != null) return "unix:" + options.UnixSocketPath;
            var target = host.IndexOf(':') >= 0 && !host.StartsWith("[", StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
            return options.Proxy != null ? $"{target} through {ProxyClient.Describe(options.Proxy)}" : target;
        }

        /// <summary>A connected socket: to the Unix socket, to the proxy (its handshake done), or to the first of the host's addresses that accepts.</summary>
        private static async Task<Socket> OpenSocketAsync(string host, int port, ConnectionOptions options, string target, CancellationToken token)
        {
            if (options.UnixSocketPath != null)
            {
                var endPoint = UnixSockets.EndPoint(options.UnixSocketPath);
                try
                {
                    return await ConnectSocketAsync(UnixSockets.NewSocket(), endPoint, token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    throw new TcpException(TcpErrorKind.ConnectionRefused, $"Nothing accepts connections at {target}: {e.Message}", e);
                }
            }

            if (options.Proxy != null)
            {
                var proxyHost = options.Proxy.HostNameType == UriHostNameType.IPv6 ? options.Proxy.DnsSafeHost : options.Proxy.Host;
                var proxyPort = options.Proxy.IsDefaultPort || options.Proxy.Port <= 0 ? (options.Proxy.Scheme == "http" ? 8080 : 1080) : options.Proxy.Port;
                Socket socket;
                try
                {
                    socket = await ConnectToAnyAsync(proxyHost, proxyPort, options, token).ConfigureAwait(false);
                }
                catch (TcpException e) when (e.Kind == TcpErrorKind.ConnectionRefused || e.Kind == TcpErrorKind.HostNotFound || e.Kind == TcpErrorKind.ConnectTimeout
                    || e.Kind == TcpErrorKind.HostUnreachable || e.Kind == TcpErrorKind.ConnectionFiltered)
                {
                    throw new TcpException(TcpErrorKind.ProxyFailed, $"Can't reach the proxy {ProxyClient.Describe(options.Proxy)}: {e.Message}", e);
                }

                try
                {
                    await ProxyClient.HandshakeAsync(socket, options.Proxy, options.ProxyCredential, host, port, token).ConfigureAwait(false);
                    return socket;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }

            return await ConnectToAnyAsync(host, port, options, token).ConfigureAwait(false);
        }

        /// <summary>Tries the host's addresses in turn (from the local address and port when given).</summary>
        private static async Task<Socket> ConnectToAnyAsync(string host, int port, ConnectionOptions options, CancellationToken token)
        {
            var target = host.IndexOf(':') >= 0 && !host.StartsWith("[", StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
            var addresses = await ResolveAsync(host).ConfigureAwait(false);
            IPAddress local = null;
            if (options.LocalAddress != null && !IPAddress.TryParse(options.LocalAddress.Trim('[', ']'), out local))
            {
                throw new TcpException(TcpErrorKind.AddressNotAvailable, $"'{options.LocalAddress}' is not an IP address to connect from.");
            }

            TcpException last = null;
            foreach (var address in addresses)
            {
                if (local != null && local.AddressFamily != address.AddressFamily)
                {
                    last = last ?? new TcpException(TcpErrorKind.AddressNotAvailable, $"{target} has no {local.AddressFamily} address to reach from {local}.");
                    continue;
                }

                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                if (local != null || options.LocalPort != 0)
                {
                    var from = new IPEndPoint(local ?? (address.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any), options.LocalPort);
                    try
                    {
                        socket.Bind(from);
                    }
                    catch (SocketException e)
                    {
                        socket.Dispose();
                        throw e.SocketErrorCode == SocketError.AddressAlreadyInUse
                            ? new TcpException(TcpErrorKind.PortInUse, $"The local port {options.LocalPort} is already in use, so can't connect from {from}.", e)
                            : new TcpException(TcpErrorKind.AddressNotAvailable, $"Can't connect from {from}: {e.Message}", e);
                    }
                }

                try
                {
                    return await ConnectSocketAsync(socket, new IPEndPoint(address, port), token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    // The address only when it says more than the host name already does.
                    var via = IPAddress.TryParse(host.Trim('[', ']'), out _) ? string.Empty : $" ({address})";
                    last = ConnectError(e, target, via);
                }
            }

            throw last;
        }

        /// <summary>What a failed connect was, as Test-TcpEndpoint tells it: refused, timed out, no route, or filtered.</summary>
        private static TcpException ConnectError(SocketException e, string target, string via)
        {
            if (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                return new TcpException(TcpErrorKind.ConnectionRefused, $"{target} refused the connection{via}.", e);
            }

            switch (EndpointProbe.StatusOf(e.SocketErrorCode))
            {
                case EndpointStatus.TimedOut:
                    return new TcpException(TcpErrorKind.ConnectTimeout, $"Connecting to {target} timed out{via}.", e);
                case EndpointStatus.Unreachable:
                    var why = e.SocketErrorCode == SocketError.InvalidArgument ? e.Message + ": a blackhole route?" : e.Message;
                    return new TcpException(TcpErrorKind.HostUnreachable, $"Can't reach {target}{via}: no route to the host ({why}).", e);
                case EndpointStatus.Filtered:
                    return new TcpException(TcpErrorKind.ConnectionFiltered,
                        $"Connecting to {target}{via} was refused by a firewall rule or a prohibit route ({e.Message}).", e);
                default:
                    return new TcpException(TcpErrorKind.ConnectionRefused, $"Connecting to {target} failed{via}: {e.Message}", e);
            }
        }

        /// <summary>
        /// Sends a PROXY protocol header first thing on a new socket, before any TLS (a proxy in front of
        /// a TLS server speaks it in the clear). It names <paramref name="source"/> to
        /// <paramref name="destination"/> (a relay's client), or by default the socket's own end points.
        /// </summary>
        private static async Task SendProxyHeaderAsync(Socket socket, ProxyProtocolVersion version,
            IPEndPoint source, IPEndPoint destination, CancellationToken cancellationToken)
        {
            if (version == ProxyProtocolVersion.None)
            {
                return;
            }

            source = source ?? socket.LocalEndPoint as IPEndPoint;
            destination = destination ?? socket.RemoteEndPoint as IPEndPoint;
            if (source == null || destination == null)
            {
                socket.Dispose();
                throw new TcpException(TcpErrorKind.ConnectionRefused, "A PROXY protocol header names TCP end points; this connection has none (a Unix domain socket).");
            }

            var header = ProxyProtocol.Write(version, source, destination);
            using (cancellationToken.Register(socket.Dispose))
            {
                try
                {
                    for (int sent = 0; sent < header.Length;)
                    {
                        sent += await socket.SendAsync(new ArraySegment<byte>(header, sent, header.Length - sent), SocketFlags.None).ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (cancellationToken.IsCancellationRequested && !(e is OperationCanceledException))
                {
                    socket.Dispose();
                    throw new OperationCanceledException(cancellationToken);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }
        }

        private static async Task<Transport> StartTransportAsync(Socket socket, string host, ConnectionOptions options,
            CancellationToken timeoutToken, CancellationToken userToken)
        {
            if (!options.UseTls)
            {
                return new SocketTransport(socket);
            }

            // Over a Unix socket there is no host name: the certificate's name comes from -ServerName.
            var serverName = options.TlsServerName ?? (host ?? "localhost").Trim('[', ']');
            var transport = TlsTransport.ForClient(socket, serverName, options);
            using (timeoutToken.Register(transport.Dispose))
            {
                try
                {
                    await transport.HandshakeAsync().ConfigureAwait(false);
                    return transport;
                }
                catch (Exception) when (userToken.IsCancellationRequested)
                {
                    transport.Dispose();
                    throw new OperationCanceledException(userToken);
                }
                catch (Exception e) when (timeoutToken.IsCancellationRequested)
                {
                    // The deadline struck mid-handshake: a stalled TLS peer, not a connect timeout.
                    transport.Dispose();
                    throw new TcpException(TcpErrorKind.TlsHandshakeFailed,
                        $"The server timed out during the TLS handshake with '{serverName}' (no answer before the connect deadline).", e);
                }
                catch
                {
                    transport.Dispose();
                    throw;
                }
            }
        }

        private static async Task<IPAddress[]> ResolveAsync(string host)
        {
            if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
            {
                return new[] { literal };
            }

            try
            {
                var addresses = await Dns.GetHostAddressesAsync(host).ConfigureAwait(false);
                if (addresses.Length > 0)
                {
                    return addresses;
                }
            }
            catch (SocketException e)
            {
                throw new TcpException(TcpErrorKind.HostNotFound, $"The host name '{host}' could not be resolved: {e.Message}", e);
            }

            throw new TcpException(TcpErrorKind.HostNotFound, $"The host name '{host}' has no addresses.");
        }

        internal static Task<Socket> ConnectSocketAsync(IPEndPoint endPoint, CancellationToken cancellationToken) =>
            ConnectSocketAsync(new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp), endPoint, cancellationToken);

        internal static async Task<Socket> ConnectSocketAsync(Socket socket, EndPoint endPoint, CancellationToken cancellationToken)
        {
            // netstandard2.0's ConnectAsync takes no token: closing the socket is what stops the
            // attempt, or it would linger for the kernel's SYN retries.
            using (cancellationToken.Register(() => socket.Dispose()))
            {
                try
                {
                    await socket.ConnectAsync(endPoint).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                    return socket;
                }
                catch (Exception e) when (cancellationToken.IsCancellationRequested && !(e is OperationCanceledException))
                {
                    socket.Dispose();
                    throw new OperationCanceledException(cancellationToken);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }
        }
    }
}

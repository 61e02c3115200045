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
            var target = host.IndexOf(':') >= 0 && !host.StartsWith("[", StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
            var addresses = await ResolveAsync(host).ConfigureAwait(false);
            using (var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeoutCts.CancelAfter(timeout);
                TcpException last = null;
                foreach (var address in addresses)
                {
                    try
                    {
                        var socket = await ConnectSocketAsync(new IPEndPoint(address, port), timeoutCts.Token).ConfigureAwait(false);
                        await SendProxyHeaderAsync(socket, options.SendProxyProtocol, proxySource, proxyDestination, timeoutCts.Token).ConfigureAwait(false);
                        var transport = await StartTransportAsync(socket, host, options, timeoutCts.Token).ConfigureAwait(false);
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
                    catch (SocketException e)
                    {
                        // The address only when it says more than the host name already does.
                        var via = IPAddress.TryParse(host.Trim('[', ']'), out _) ? string.Empty : $" ({address})";
                        last = e.SocketErrorCode == SocketError.ConnectionRefused
                            ? new TcpException(TcpErrorKind.ConnectionRefused, $"{target} refused the connection{via}.", e)
                            : e.SocketErrorCode == SocketError.TimedOut
                                ? new TcpException(TcpErrorKind.ConnectTimeout, $"Connecting to {target} timed out{via}.", e)
                                : new TcpException(TcpErrorKind.ConnectionRefused, $"Connecting to {target} failed{via}: {e.Message}", e);
                    }
                }

                throw last;
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

            var header = ProxyProtocol.Write(version, source ?? (IPEndPoint)socket.LocalEndPoint, destination ?? (IPEndPoint)socket.RemoteEndPoint);
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

        private static async Task<Transport> StartTransportAsync(Socket socket, string host, ConnectionOptions options, CancellationToken cancellationToken)
        {
            if (!options.UseTls)
            {
                return new SocketTransport(socket);
            }

            var transport = TlsTransport.ForClient(socket, options.TlsServerName ?? host.Trim('[', ']'), options.SkipCertificateCheck);
            using (cancellationToken.Register(transport.Dispose))
            {
                try
                {
                    await transport.HandshakeAsync().ConfigureAwait(false);
                    return transport;
                }
                catch (TcpException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
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

        internal static async Task<Socket> ConnectSocketAsync(IPEndPoint endPoint, CancellationToken cancellationToken)
        {
            var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
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

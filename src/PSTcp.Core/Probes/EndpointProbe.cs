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
        /// <summary>The host answered no: a reset, or an error such as "no route to host" (see <see cref="TcpEndpointStatus.Error"/>).</summary>
        Refused,
        /// <summary>No answer within the timeout (a firewall that drops, a full backlog, a slow DNS).</summary>
        TimedOut,
        /// <summary>The name did not resolve.</summary>
        HostNotFound,
    }

    /// <summary>The result of one connection attempt to a host and port.</summary>
    public sealed class TcpEndpointStatus
    {
        public TcpEndpointStatus(string hostName, IPAddress address, int port, EndpointStatus status, TimeSpan latency, string error)
        {
            HostName = hostName;
            Address = address;
            Port = port;
            Status = status;
            Latency = latency;
            Error = error;
        }

        public string HostName { get; }

        /// <summary>The address that answered, or the last one tried; null when the name did not resolve.</summary>
        public IPAddress Address { get; }

        public int Port { get; }

        public bool Open => Status == EndpointStatus.Open;

        public EndpointStatus Status { get; }

        /// <summary>From the start of the attempt (name resolution included) to its end.</summary>
        public TimeSpan Latency { get; }

        /// <summary>Why an attempt that isn't Open failed, in the system's words; null when Open.</summary>
        public string Error { get; }

        public override string ToString() => $"{HostName}:{Port} {Status}";
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
                IPAddress[] addresses;
                try
                {
                    addresses = await ResolveAsync(host, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return new TcpEndpointStatus(host, null, port, EndpointStatus.TimedOut, clock.Elapsed,
                        $"Resolving '{host}' took longer than {timeout.TotalSeconds:0.###} s.");
                }
                catch (Exception e) when (e is SocketException || e is ArgumentException)
                {
                    // ArgumentException: a name no resolver takes (too long, empty labels).
                    return new TcpEndpointStatus(host, null, port, EndpointStatus.HostNotFound, clock.Elapsed, e.Message);
                }

                if (addresses.Length == 0)
                {
                    return new TcpEndpointStatus(host, null, port, EndpointStatus.HostNotFound, clock.Elapsed, $"'{host}' has no addresses.");
                }

                TcpEndpointStatus last = null;
                foreach (var address in addresses)
                {
                    last = await ConnectAsync(host, address, port, clock, timeout, deadline.Token, cancellationToken).ConfigureAwait(false);
                    if (last.Status == EndpointStatus.Open || last.Status == EndpointStatus.TimedOut) break;
                }

                return last;
            }
        }

        private static async Task<TcpEndpointStatus> ConnectAsync(string host, IPAddress address, int port, Stopwatch clock,
            TimeSpan timeout, CancellationToken deadline, CancellationToken cancellationToken)
        {
            try
            {
                using (await TcpConnection.ConnectSocketAsync(new IPEndPoint(address, port), deadline).ConfigureAwait(false))
                {
                    return new TcpEndpointStatus(host, address, port, EndpointStatus.Open, clock.Elapsed, null);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return new TcpEndpointStatus(host, address, port, EndpointStatus.TimedOut, clock.Elapsed,
                    $"No answer within {timeout.TotalSeconds:0.###} s.");
            }
            catch (SocketException e)
            {
                var status = e.SocketErrorCode == SocketError.TimedOut ? EndpointStatus.TimedOut : EndpointStatus.Refused;
                return new TcpEndpointStatus(host, address, port, status, clock.Elapsed, e.Message);
            }
        }

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

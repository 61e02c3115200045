using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>EndpointProbe through a proxy (an in-process SOCKS5 stand-in that answers a given reply code) and to Unix domain sockets.</summary>
    public class EndpointProbeProxyUnixTests
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

        /// <summary>Accepts one client, speaks SOCKS5 without a login, and answers its CONNECT with <paramref name="reply"/>.</summary>
        private static async Task ServeSocks5Async(TcpListener listener, byte reply)
        {
            using (var client = await listener.AcceptSocketAsync())
            {
                await ReadExactAsync(client, 3);
                await client.SendAsync(new ArraySegment<byte>(new byte[] { 5, 0 }), SocketFlags.None);
                await ReadExactAsync(client, 10); // an IPv4 CONNECT
                await client.SendAsync(new ArraySegment<byte>(new byte[] { 5, reply, 0, 1, 0, 0, 0, 0, 0, 0 }), SocketFlags.None);
                await ReadExactAsync(client, 0);
            }
        }

        private static async Task ReadExactAsync(Socket socket, int count)
        {
            var buffer = new byte[Math.Max(count, 1)];
            for (int read = 0; read < count;)
            {
                int n = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, read, count - read), SocketFlags.None);
                if (n == 0) throw new EndOfStreamException();
                read += n;
            }
        }

        [Theory]
        [InlineData(0, EndpointStatus.Open)]
        [InlineData(1, EndpointStatus.Refused)]
        [InlineData(2, EndpointStatus.Filtered)]
        [InlineData(3, EndpointStatus.Unreachable)]
        [InlineData(4, EndpointStatus.Unreachable)]
        [InlineData(5, EndpointStatus.Refused)]
        [InlineData(6, EndpointStatus.TimedOut)]
        public async Task Socks5RepliesMapToStatuses(byte reply, EndpointStatus expected)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                int proxyPort = ((IPEndPoint)listener.LocalEndpoint).Port;
                var serving = ServeSocks5Async(listener, reply);
                var result = await EndpointProbe.ProbeThroughProxyAsync("127.0.0.1", 8080, new Uri($"socks5://127.0.0.1:{proxyPort}"), null, Timeout, CancellationToken.None);
                Assert.Equal(expected, result.Status);
                Assert.Equal($"socks5://127.0.0.1:{proxyPort}", result.Proxy);
                Assert.Equal(IPAddress.Loopback, result.Address);
                if (reply == 0) Assert.Null(result.Error);
                else Assert.StartsWith($"The proxy socks5://127.0.0.1:{proxyPort} could not connect to 127.0.0.1:8080: ", result.Error);
                await Poll.WithTimeout(serving, "the stand-in proxy's end");
            }
            finally
            {
                listener.Stop();
            }
        }

        [Fact]
        public async Task AProxyNobodyListensOnIsRefusedNamingTheProxy()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            var result = await EndpointProbe.ProbeThroughProxyAsync("example.invalid", 80, new Uri($"http://127.0.0.1:{port}"), null, Timeout, CancellationToken.None);
            Assert.Equal(EndpointStatus.Refused, result.Status);
            Assert.StartsWith($"Can't reach the proxy http://127.0.0.1:{port}: ", result.Error);
            Assert.Null(result.Address);
        }

        [Fact]
        public async Task UnixSocketsAreOpenRefusedOrNotFound()
        {
            if (Environment.OSVersion.Platform != PlatformID.Unix) return;
            var dir = Path.Combine(Path.GetTempPath(), "pstcp-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(dir);
            try
            {
                var path = Path.Combine(dir, "s.sock");
                using (var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
                {
                    listener.Bind(new UnixDomainSocketEndPoint(path));
                    listener.Listen(4);
                    var open = await EndpointProbe.ProbeUnixSocketAsync(path, Timeout, CancellationToken.None);
                    Assert.Equal(EndpointStatus.Open, open.Status);
                    Assert.Equal(path, open.HostName);
                    Assert.Equal(0, open.Port);
                    Assert.Null(open.Address);
                }

                // Bound, not listening: the file of a server that died, a socket nobody listens on.
                var stale = Path.Combine(dir, "stale.sock");
                using (var bound = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
                {
                    bound.Bind(new UnixDomainSocketEndPoint(stale));
                    var refused = await EndpointProbe.ProbeUnixSocketAsync(stale, Timeout, CancellationToken.None);
                    Assert.Equal(EndpointStatus.Refused, refused.Status);
                    Assert.False(string.IsNullOrEmpty(refused.Error));
                }

                var missing = await EndpointProbe.ProbeUnixSocketAsync(Path.Combine(dir, "none.sock"), Timeout, CancellationToken.None);
                Assert.Equal(EndpointStatus.HostNotFound, missing.Status);
                Assert.StartsWith("No such file: ", missing.Error);
            }
            finally
            {
                Directory.Delete(dir, true);
            }
        }
    }
}

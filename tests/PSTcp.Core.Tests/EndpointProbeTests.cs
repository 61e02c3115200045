using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    public class EndpointProbeTests
    {
        [Fact]
        public async Task OpenPortIsOpenAndTheProbeLeaves()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                int port = ((IPEndPoint)listener.LocalEndpoint).Port;
                var result = await EndpointProbe.ProbeAsync("127.0.0.1", port, TimeSpan.FromSeconds(5), CancellationToken.None);
                Assert.Equal(EndpointStatus.Open, result.Status);
                Assert.True(result.Open);
                Assert.Equal(IPAddress.Loopback, result.Address);
                Assert.Null(result.Error);
                using (var accepted = await Poll.WithTimeout(listener.AcceptSocketAsync(), "the probe's connection"))
                {
                    // The probe closed its socket: the accepted side reads EOF.
                    var buffer = new byte[1];
                    Assert.Equal(0, await Poll.WithTimeout(accepted.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None), "EOF"));
                }
            }
            finally
            {
                listener.Stop();
            }
        }

        [Fact]
        public async Task ClosedPortIsRefused()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            var result = await EndpointProbe.ProbeAsync("127.0.0.1", port, TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.Equal(EndpointStatus.Refused, result.Status);
            Assert.False(result.Open);
            Assert.False(string.IsNullOrEmpty(result.Error));
        }

        [Fact]
        public async Task UnresolvableNameIsHostNotFound()
        {
            var result = await EndpointProbe.ProbeAsync("nonexistent.invalid", 80, TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.Equal(EndpointStatus.HostNotFound, result.Status);
            Assert.Null(result.Address);
        }

        [Fact]
        public async Task CancellationEndsTheProbe()
        {
            using (var cts = new CancellationTokenSource())
            {
                cts.Cancel();
                // A cancelled probe throws rather than reporting a status it did not observe.
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                    EndpointProbe.ProbeAsync("127.0.0.1", 9, TimeSpan.FromSeconds(5), cts.Token));
            }
        }

        [Fact]
        public async Task RejectsBadArguments()
        {
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => EndpointProbe.ProbeAsync("127.0.0.1", 0, TimeSpan.FromSeconds(1), CancellationToken.None));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => EndpointProbe.ProbeAsync("127.0.0.1", 80, TimeSpan.Zero, CancellationToken.None));
        }
    }
}

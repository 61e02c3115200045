using System;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>RelayHandler through the core alone: a relay server, a raw client, a raw listener as the target.</summary>
    public class RelayTests
    {
        private static (RelayHandler Handler, EchoServer Relay) StartRelay(int targetPort, bool queue = true, ProxyProtocolVersion proxy = ProxyProtocolVersion.None)
        {
            var handler = new RelayHandler("127.0.0.1", targetPort, new ConnectionOptions { SendProxyProtocol = proxy }, TimeSpan.FromSeconds(5), queue);
            var relay = new EchoServer(o =>
            {
                o.AcceptedDirection = MessageDirection.ClientToTarget;
                o.QueueMessages = queue;
            }, handler);
            return (handler, relay);
        }

        private static TcpListener StartTarget()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return listener;
        }

        private static int PortOf(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

        [Fact]
        public async Task ANoQueueRelayKeepsNothingOfWhatTheTargetSends()
        {
            var target = StartTarget();
            try
            {
                var (handler, relay) = StartRelay(PortOf(target), queue: false);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await Poll.UntilAsync(() => handler.TargetConnections.Count == 1, "the target connection to be registered");
                    var down = new byte[1_000_000];
                    new Random(5).NextBytes(down);
                    var sending = peer.SendAsync(new ArraySegment<byte>(down), SocketFlags.None);
                    Assert.Equal(down, await client.ReadExactlyAsync(down.Length));
                    await Poll.WithTimeout(sending, "the target's send");
                    var side = Assert.Single(handler.TargetConnections);
                    // Its reads were forwarded and counted, and none kept: a private queue that
                    // nobody reads held up to 10,000 reads (640 MB) per pair.
                    Assert.Equal(down.Length, side.BytesReceived);
                    Assert.Equal(0, side.Queue.Count);
                    Assert.Equal(0, side.MessagesDropped);
                }
            }
            finally
            {
                target.Stop();
            }
        }

        [Fact]
        public async Task ForwardsBothWaysAndQueuesBothDirections()
        {
            var target = StartTarget();
            try
            {
                var (handler, relay) = StartRelay(PortOf(target));
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await Poll.UntilAsync(() => handler.TargetConnections.Count == 1, "the target connection to be registered");
                    var up = new byte[200_000];
                    new Random(3).NextBytes(up);
                    up[up.Length - 1] = (byte)'\n';
                    await client.SendAsync(up);
                    var received = new byte[up.Length];
                    for (int got = 0; got < up.Length;)
                    {
                        int n = await Poll.WithTimeout(peer.ReceiveAsync(new ArraySegment<byte>(received, got, up.Length - got), SocketFlags.None), "bytes at the target");
                        Assert.NotEqual(0, n);
                        got += n;
                    }

                    Assert.Equal(up, received);
                    await peer.SendAsync(new ArraySegment<byte>(Bytes.Latin1("answer\n")), SocketFlags.None);
                    Assert.Equal("answer\n", await client.ReadLineTextAsync());

                    var all = await Queues.TakeAsync(relay.Queue, up.Count(b => b == (byte)'\n') + 1);
                    Assert.All(all.Take(all.Count - 1), m => Assert.Equal(MessageDirection.ClientToTarget, m.Direction));
                    Assert.Equal(MessageDirection.TargetToClient, all.Last().Direction);
                    Assert.Equal("answer", all.Last().Text);
                    Assert.Equal(0, relay.Server.ErrorCount);
                }
            }
            finally
            {
                target.Stop();
            }
        }

        [Fact]
        public async Task RefusedTargetClosesThatClientAndIsRecorded()
        {
            var target = StartTarget();
            int port = PortOf(target);
            target.Stop();
            var (handler, relay) = StartRelay(port, queue: false);
            await using (relay)
            {
                using var client = await relay.ConnectAsync();
                // The relay closes the client once its target refuses.
                _ = await client.ReadToEndAsync();
                await Poll.UntilAsync(() => relay.Server.ErrorCount == 1, "the failure to be recorded");
                Assert.Equal(1, handler.TargetFailures);
                Assert.Equal(TcpErrorKind.ConnectionRefused, relay.Server.LastError.Kind);
                Assert.Equal(ServerState.Running, relay.Server.State);
            }
        }

        [Fact]
        public async Task HalfCloseIsPassedOnAndTheAnswerStillArrives()
        {
            var target = StartTarget();
            try
            {
                var (_, relay) = StartRelay(PortOf(target), queue: false);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await client.SendAsync("request\n");
                    client.Socket.Shutdown(SocketShutdown.Send);
                    var buffer = new byte[64];
                    int total = 0, n;
                    while ((n = await Poll.WithTimeout(peer.ReceiveAsync(new ArraySegment<byte>(buffer, total, buffer.Length - total), SocketFlags.None), "the request, then EOF")) > 0)
                    {
                        total += n;
                    }

                    Assert.Equal("request\n", System.Text.Encoding.ASCII.GetString(buffer, 0, total));
                    await peer.SendAsync(new ArraySegment<byte>(Bytes.Latin1("late answer\n")), SocketFlags.None);
                    peer.Shutdown(SocketShutdown.Send);
                    var (data, _) = await client.ReadToEndAsync();
                    Assert.Equal("late answer\n", System.Text.Encoding.ASCII.GetString(data));
                }
            }
            finally
            {
                target.Stop();
            }
        }

        [Fact]
        public async Task SendsAProxyHeaderNamingTheClient()
        {
            var target = StartTarget();
            try
            {
                var (_, relay) = StartRelay(PortOf(target), queue: false, proxy: ProxyProtocolVersion.V2);
                await using (relay)
                {
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    var buffer = new byte[28];
                    for (int got = 0; got < buffer.Length;)
                    {
                        got += await Poll.WithTimeout(peer.ReceiveAsync(new ArraySegment<byte>(buffer, got, buffer.Length - got), SocketFlags.None), "the header");
                    }

                    Assert.Equal(ProxyParseStatus.Valid, ProxyProtocol.TryParse(buffer, out var header, out int consumed, out _));
                    Assert.Equal(28, consumed);
                    Assert.Equal(client.Socket.LocalEndPoint.ToString(), header.Source.ToString());
                    Assert.Equal(relay.Port, header.Destination.Port);
                }
            }
            finally
            {
                target.Stop();
            }
        }
    }
}

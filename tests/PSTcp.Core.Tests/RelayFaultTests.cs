using System;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>The relay's fault engine (TcpFault, RelayFaults): triggers alone, then through a relay with raw sockets.</summary>
    public class RelayFaultTests
    {
        private static TcpFault Attached(TcpFault fault)
        {
            new RelayFaults().Add(fault, null);
            return fault;
        }

        [Fact]
        public void MatchAfterMessagesAndCountPickTheSecondMatchOnly()
        {
            var fault = Attached(new TcpFault(TcpFaultType.Reset)
            {
                Match = "GET*",
                Matcher = t => t.StartsWith("GET", StringComparison.OrdinalIgnoreCase),
                AfterMessages = 1,
                Count = 1,
            });
            var fired = new[] { "SET a", "GET a", "PING", "GET b", "GET c" }.Select(t => fault.TryFire(t, wholeMessage: true)).ToArray();
            Assert.Equal(new[] { false, false, false, true, false }, fired);
            Assert.Equal(1, fault.Applied);
            // A read that ends no message can't meet a trigger.
            Assert.False(Attached(new TcpFault(TcpFaultType.Reset) { AfterMessages = 0, Match = "x", Matcher = _ => true }).TryFire(null, wholeMessage: false));
        }

        [Fact]
        public void ProbabilityWithASeedRepeatsItsChoices()
        {
            bool[] Run()
            {
                var fault = Attached(new TcpFault(TcpFaultType.Latency) { Latency = TimeSpan.FromMilliseconds(1), Probability = 0.3, Seed = 99 });
                return Enumerable.Range(0, 200).Select(_ => fault.TryFire("m", true)).ToArray();
            }

            var first = Run();
            Assert.Equal(first, Run());
            int count = first.Count(f => f);
            Assert.InRange(count, 30, 90);
        }

        [Fact]
        public void SettingsThatMakeNoFaultAreRefusedAndNamesAreUnique()
        {
            var faults = new RelayFaults();
            Assert.Throws<ArgumentException>(() => faults.Add(new TcpFault(TcpFaultType.Latency), null));
            Assert.Throws<ArgumentException>(() => faults.Add(new TcpFault(TcpFaultType.Bandwidth), null));
            Assert.Throws<ArgumentException>(() => faults.Add(new TcpFault(TcpFaultType.SlowClose), null));
            Assert.Throws<ArgumentException>(() => faults.Add(new TcpFault(TcpFaultType.Reset) { Probability = 1.5 }, null));
            faults.Add(new TcpFault(TcpFaultType.Reset) { Name = "x" }, null);
            Assert.Throws<ArgumentException>(() => faults.Add(new TcpFault(TcpFaultType.Timeout) { Name = "X" }, null));
            var jitter = new TcpFault(TcpFaultType.Latency) { Latency = TimeSpan.FromMilliseconds(200), Jitter = TimeSpan.FromMilliseconds(50), Match = "GET*", Count = 2 };
            faults.Add(jitter, null);
            Assert.Equal("200 ms ± 50 ms; on 'GET*', at most 2", jitter.Summary);
            Assert.All(Enumerable.Range(0, 100).Select(_ => jitter.NextLatency().TotalMilliseconds), ms => Assert.InRange(ms, 150, 250));
            Assert.True(faults.Remove(jitter));
            Assert.False(jitter.Active);
            Assert.False(jitter.TryFire("GET", true));
        }

        private static (RelayHandler Handler, EchoServer Relay) StartRelay(int targetPort)
        {
            var handler = new RelayHandler("127.0.0.1", targetPort, new ConnectionOptions(), TimeSpan.FromSeconds(5), true);
            var relay = new EchoServer(o => o.AcceptedDirection = MessageDirection.ClientToTarget, handler);
            return (handler, relay);
        }

        private static async Task<string> ReadAsync(Socket socket, int count)
        {
            var buffer = new byte[count];
            for (int got = 0; got < count;)
            {
                int n = await Poll.WithTimeout(socket.ReceiveAsync(new ArraySegment<byte>(buffer, got, count - got), SocketFlags.None), "bytes at the target");
                Assert.NotEqual(0, n);
                got += n;
            }

            return System.Text.Encoding.Latin1.GetString(buffer);
        }

        private static async Task<string> ReadToEndAsync(Socket socket)
        {
            var all = new System.Collections.Generic.List<byte>();
            var buffer = new byte[1024];
            while (true)
            {
                int n = await Poll.WithTimeout(socket.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None), "the target's end");
                if (n == 0) return System.Text.Encoding.Latin1.GetString(all.ToArray());
                all.AddRange(buffer.Take(n));
            }
        }

        [Fact]
        public async Task AMatchOnAMessageSplitAcrossReadsFiresWhenItEndsAndLimitDataCutsExactly()
        {
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var (handler, relay) = StartRelay(((IPEndPoint)target.LocalEndpoint).Port);
                await using (relay)
                {
                    var limit = new TcpFault(TcpFaultType.LimitData) { ByteCount = 4, Direction = TcpFaultDirection.ClientToTarget, Match = "CUT*", Matcher = t => t.StartsWith("CUT") };
                    handler.Faults.Add(limit, relay.Server);
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await client.SendAsync("hello\n");
                    Assert.Equal("hello\n", await ReadAsync(peer, 6));
                    // "CUT" arrives in two reads; the fault fires when the line ends, counting from where it began.
                    await client.SendAsync("CU");
                    await Poll.UntilAsync(() => relay.Server.BytesReceived == 8, "the first half at the relay");
                    await client.SendAsync("T this\nmore\n");
                    // "CU" went already; the fault fired on "CUT this" with 4 bytes allowed from its read: "T th", then FIN.
                    Assert.Equal("CUT th", await ReadToEndAsync(peer));
                    Assert.Equal(1, limit.Applied);
                    Assert.Equal("CUT this", limit.Firings.Single().Message);
                    var messages = await Queues.TakeAsync(relay.Queue, 2);
                    Assert.All(messages, m => Assert.Equal(m.ConnectionId, m.ConversationId));
                }
            }
            finally
            {
                target.Stop();
            }
        }

        [Fact]
        public async Task BothDirectionsOfAPairShareTheClientsConversationId()
        {
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var (handler, relay) = StartRelay(((IPEndPoint)target.LocalEndpoint).Port);
                await using (relay)
                {
                    Assert.Equal("127.0.0.1:" + ((IPEndPoint)target.LocalEndpoint).Port, relay.Server.Target);
                    using var client = await relay.ConnectAsync();
                    using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                    await client.SendAsync("up\n");
                    Assert.Equal("up\n", await ReadAsync(peer, 3));
                    await peer.SendAsync(new ArraySegment<byte>(Bytes.Latin1("down\n")), SocketFlags.None);
                    Assert.Equal("down\n", await client.ReadLineTextAsync());
                    var messages = await Queues.TakeAsync(relay.Queue, 2);
                    Assert.Equal(messages[0].ConnectionId, messages[1].ConversationId);
                    Assert.Equal(messages[0].ConversationId, messages[1].ConversationId);
                    Assert.NotEqual(messages[1].ConnectionId, messages[1].ConversationId);
                }
            }
            finally
            {
                target.Stop();
            }
        }
    }
}

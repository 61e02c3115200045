using System;
using System.Buffers;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>
    /// Issue 19's cases 2, 4, 7 and 14 in the core (SPEC "Guarantees"): idle accounting, queue
    /// before echo, relay observation versus forwarding, and where handlers run.
    /// </summary>
    public class OrderingGuaranteeTests
    {
        private static byte[] Lines(string prefix, int from, int count) =>
            Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(from, count).Select(i => $"{prefix}{i}\n")));

        // ---- Case 2: idle means the peer is silent while we are ready to read ----

        [Fact]
        public async Task IdleTimeoutSparesAConnectionPausedByItsFullWaitQueue()
        {
            await using var server = new EchoServer(o =>
            {
                o.IdleTimeout = TimeSpan.FromMilliseconds(300);
                o.QueueCapacity = 5;
                o.QueueFullMode = QueueFullMode.Wait;
            });
            using var client = await server.ConnectAsync();
            await client.SendAsync(Lines("line", 1, 50));
            // The first messages are queued at once; the rest waits for room, reading paused.
            await Poll.UntilAsync(() => server.Queue.Count == 5, "the queue to fill");
            // The consumer is slower than the idle timeout, several times over.
            await Task.Delay(1200);
            var messages = await server.TakeAsync(50);
            Assert.Equal(Enumerable.Range(1, 50).Select(i => $"line{i}"), messages.Select(m => m.Text));
            Assert.Equal(0, server.Queue.DroppedCount);
            var echoed = await client.ReadExactlyAsync(Lines("line", 1, 50).Length);
            Assert.Equal(Lines("line", 1, 50), echoed);
            // Silent and ready to read, it is idle again: the timeout still closes it.
            var (rest, end) = await client.ReadToEndAsync();
            Assert.Empty(rest);
        }

        private sealed class SlowReplyHandler : LineHandler
        {
            private readonly TimeSpan _delay;

            public SlowReplyHandler(TimeSpan delay) => _delay = delay;

            public override bool NeedsMessages => false;

            public override async ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
                IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
            {
                var reply = rawLines.ToArray();
                await Task.Delay(_delay).ConfigureAwait(false);
                await connection.SendAsync(reply, cancellationToken).ConfigureAwait(false);
            }
        }

        [Fact]
        public async Task IdleTimeoutSparesAConnectionWhoseHandlerIsBusy()
        {
            await using var server = new EchoServer(o => o.IdleTimeout = TimeSpan.FromMilliseconds(300),
                new SlowReplyHandler(TimeSpan.FromMilliseconds(1200)));
            using var client = await server.ConnectAsync();
            await client.SendAsync("question\n");
            Assert.Equal("question\n", await client.ReadLineTextAsync());
            var message = Assert.Single(await server.TakeAsync(1));
            Assert.Equal("question", message.Text);
            var (_, end) = await client.ReadToEndAsync();
            Assert.Equal(EndKind.Eof, end);
        }

        // ---- Case 4: a relay forwards bytes exactly, whatever its observation does ----

        [Fact]
        public async Task RelayForwardsALineOverTheLimitWholeAndObservesItTruncated()
        {
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var relayHandler = new RelayHandler("127.0.0.1", ((IPEndPoint)target.LocalEndpoint).Port,
                    new ConnectionOptions(), TimeSpan.FromSeconds(5), queueMessages: true);
                await using var relay = new EchoServer(o => o.AcceptedDirection = MessageDirection.ClientToTarget, relayHandler);
                int limit = relay.Options.MaxLineLength;
                var random = new Random(4);
                byte[] LongLine(int length)
                {
                    var line = new byte[length + 1];
                    for (int i = 0; i < length; i++) line[i] = (byte)('a' + random.Next(26));
                    line[length] = (byte)'\n';
                    return line;
                }

                using var client = await relay.ConnectAsync();
                using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                var peerStream = new NetworkStream(peer);

                // Target to client: a 100 KB line, then an ordinary one.
                var down = Bytes.Concat(LongLine(100_000), Encoding.ASCII.GetBytes("after\n"));
                var sending = peer.SendAsync(new ArraySegment<byte>(down), SocketFlags.None);
                Assert.Equal(down, await client.ReadExactlyAsync(down.Length));
                await Poll.WithTimeout(sending, "the target's send");

                // Client to target: the same, the other way.
                var up = Bytes.Concat(LongLine(70_000), Encoding.ASCII.GetBytes("later\n"));
                await client.SendAsync(up);
                var got = new byte[up.Length];
                using (var cts = new CancellationTokenSource(Poll.DefaultTimeout))
                {
                    await peerStream.ReadExactlyAsync(got, cts.Token);
                }

                Assert.Equal(up, got);

                var messages = await relay.TakeAsync(4);
                var fromTarget = messages.Where(m => m.Direction == MessageDirection.TargetToClient).ToList();
                var fromClient = messages.Where(m => m.Direction == MessageDirection.ClientToTarget).ToList();
                Assert.Equal(2, fromTarget.Count);
                Assert.True(fromTarget[0].Truncated);
                Assert.Equal(down.Take(limit).ToArray(), fromTarget[0].Data);
                Assert.False(fromTarget[1].Truncated);
                Assert.Equal("after", fromTarget[1].Text);
                Assert.Equal(2, fromClient.Count);
                Assert.True(fromClient[0].Truncated);
                Assert.Equal(up.Take(limit).ToArray(), fromClient[0].Data);
                Assert.Equal("later", fromClient[1].Text);

                // Observation closed nothing and reported nothing: the pair still relays.
                Assert.Equal(0, relay.Server.ErrorCount);
                await client.SendAsync("ping\n");
                var ping = new byte[5];
                using (var cts = new CancellationTokenSource(Poll.DefaultTimeout))
                {
                    await peerStream.ReadExactlyAsync(ping, cts.Token);
                }

                Assert.Equal("ping\n", Encoding.ASCII.GetString(ping));
                await peer.SendAsync(Encoding.ASCII.GetBytes("pong\n"), SocketFlags.None);
                Assert.Equal("pong\n", await client.ReadLineTextAsync());
            }
            finally
            {
                target.Stop();
            }
        }

        [Fact]
        public async Task RelayWhoseLengthFramingLosesItsPlaceStopsObservingButForwardsEverything()
        {
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Start();
            try
            {
                var relayHandler = new RelayHandler("127.0.0.1", ((IPEndPoint)target.LocalEndpoint).Port,
                    new ConnectionOptions(), TimeSpan.FromSeconds(5), queueMessages: true);
                await using var relay = new EchoServer(o =>
                {
                    o.AcceptedDirection = MessageDirection.ClientToTarget;
                    o.Framing = Framing.FramingKind.LengthPrefix;
                    o.PrefixSize = 4;
                    o.MaxLineLength = 100;
                }, relayHandler);
                using var client = await relay.ConnectAsync();
                using var peer = await Poll.WithTimeout(target.AcceptSocketAsync(), "the relay's target connection");
                var small = new byte[] { 0, 0, 0, 2, (byte)'o', (byte)'k' };
                var big = Bytes.Concat(new byte[] { 0, 0, 2, 0 }, Enumerable.Repeat((byte)'z', 512).ToArray());
                var after = new byte[] { 0, 0, 0, 3, (byte)'a', (byte)'b', (byte)'c' };
                var up = Bytes.Concat(small, big, after);
                await client.SendAsync(up);
                var got = new byte[up.Length];
                using (var cts = new CancellationTokenSource(Poll.DefaultTimeout))
                {
                    await new NetworkStream(peer).ReadExactlyAsync(got, cts.Token);
                }

                Assert.Equal(up, got);
                Assert.Equal("ok", Assert.Single(await relay.TakeAsync(1)).Text);
                // Reported once, as an error that says the bytes still went through.
                await Poll.UntilAsync(() => relay.Server.ErrorCount == 1, "the observation error");
                Assert.Equal(TcpErrorKind.LineTooLong, relay.Server.LastError.Kind);
                Assert.Contains("forwards", relay.Server.LastError.Message);
                // The pair still relays, both ways.
                await peer.SendAsync(new byte[] { 0, 0, 0, 1, (byte)'!' }, SocketFlags.None);
                Assert.Equal(new byte[] { 0, 0, 0, 1, (byte)'!' }, await client.ReadExactlyAsync(5));
                Assert.Equal(1, relay.Server.ErrorCount);
            }
            finally
            {
                target.Stop();
            }
        }

        // ---- Case 7: a message is queued before anything is sent because of it ----

        /// <summary>Client A sends line i and waits for its answer, then B sends line i: the consumer sees A's first, always.</summary>
        private static async Task AssertCausalOrder(EchoServer server, int iterations)
        {
            using var a = await server.ConnectAsync();
            using var b = await server.ConnectAsync();
            for (int i = 0; i < iterations; i++)
            {
                await a.SendAsync($"a{i}\n");
                Assert.Equal($"a{i}\n", await a.ReadLineTextAsync());
                await b.SendAsync($"b{i}\n");
                Assert.Equal($"b{i}\n", await b.ReadLineTextAsync());
            }

            var texts = (await server.TakeAsync(2 * iterations, TimeSpan.FromSeconds(30))).Select(m => m.Text).ToList();
            var expected = Enumerable.Range(0, iterations).SelectMany(i => new[] { $"a{i}", $"b{i}" }).ToList();
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.True(expected[i] == texts[i], $"message {i}: expected {expected[i]}, the consumer saw {texts[i]} (…{string.Join(",", texts.Skip(Math.Max(0, i - 3)).Take(6))}…)");
            }
        }

        [Fact]
        public async Task EchoNeverOvertakesItsMessageAcrossConnections()
        {
            await using var server = new EchoServer();
            await AssertCausalOrder(server, 2000);
        }

        [Fact]
        public async Task CausalityAcrossTwoConnectionsHoldsForEveryLine()
        {
            // A handler that answers and only then finishes (logs, say): the answer must not
            // be out before its message is queued.
            await using var server = new EchoServer(handler: new ReplyThenWorkHandler());
            await AssertCausalOrder(server, 40);
        }

        private sealed class ReplyThenWorkHandler : LineHandler
        {
            public override bool NeedsMessages => false;

            public override async ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
                IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
            {
                await connection.SendAsync(rawLines, cancellationToken).ConfigureAwait(false);
                await Task.Delay(30).ConfigureAwait(false);
            }
        }

        [Fact]
        public async Task WaitModeHoldsTheEchoOfALineUntilItIsQueued()
        {
            await using var server = new EchoServer(o =>
            {
                o.QueueCapacity = 1;
                o.QueueFullMode = QueueFullMode.Wait;
            });
            using var client = await server.ConnectAsync();
            await client.SendAsync("first\n");
            Assert.Equal("first\n", await client.ReadLineTextAsync());
            await client.SendAsync("second\n");
            // The queue is full: "second" isn't queued, so it isn't echoed either.
            Assert.True(await client.StaysQuietAsync(TimeSpan.FromMilliseconds(500)), "the echo of a line that isn't queued went out");
            Assert.Equal(new[] { "first", "second" }, (await server.TakeAsync(2)).Select(m => m.Text));
            Assert.Equal("second\n", await client.ReadLineTextAsync());
        }

        // ---- Case 14: a blocking handler from the public API doesn't hold a poller ----

        private sealed class BlockingHandler : LineHandler
        {
            public readonly ManualResetEventSlim Gate = new ManualResetEventSlim();

            public override bool NeedsMessages => false;

            public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
                IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
            {
                if (rawLines.FirstSpan.StartsWith(Encoding.ASCII.GetBytes("block")))
                {
                    // A synchronous wait, as a careless handler does (a lock, a blocking call).
                    Gate.Wait(TimeSpan.FromSeconds(20));
                }

                return connection.SendAsync(rawLines, cancellationToken);
            }
        }

        [Fact]
        public async Task BlockingLineHandlerDoesNotStallOtherConnections()
        {
            var handler = new BlockingHandler();
            await using var server = new EchoServer(handler: handler);
            var clients = new List<RawClient>();
            try
            {
                for (int i = 0; i < 16; i++) clients.Add(await server.ConnectAsync());
                await clients[0].SendAsync("block\n");
                await Poll.UntilAsync(() => server.Server.MessagesReceived >= 1, "the blocking line to arrive");
                var others = clients.Skip(1).Select(async (c, i) =>
                {
                    await c.SendAsync($"hello{i}\n");
                    return await c.ReadLineTextAsync(TimeSpan.FromSeconds(5));
                }).ToList();
                var echoes = await Task.WhenAll(others);
                Assert.Equal(Enumerable.Range(0, 15).Select(i => $"hello{i}\n"), echoes);
                handler.Gate.Set();
                Assert.Equal("block\n", await clients[0].ReadLineTextAsync());
                // The blocked connection's order holds: its next lines come after.
                await clients[0].SendAsync("after1\nafter2\n");
                Assert.Equal("after1\n", await clients[0].ReadLineTextAsync());
                Assert.Equal("after2\n", await clients[0].ReadLineTextAsync());
            }
            finally
            {
                handler.Gate.Set();
                foreach (var c in clients) c.Dispose();
            }
        }

        [Fact]
        public async Task SeveralConsumersNeverReportNegativeDrops()
        {
            using var fixture = new OriginFixture();
            var origin = fixture.NewOrigin();
            var queue = new MessageQueue(4, QueueFullMode.DropOldest);
            long reported = 0;
            long negative = 0;
            using var stop = new CancellationTokenSource();
            var consumers = Enumerable.Range(0, 4).Select(n => Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    long drops = queue.TakeUnreportedDrops();
                    if (drops < 0) Interlocked.Increment(ref negative);
                    Interlocked.Add(ref reported, drops);
                    queue.TryRead(out _);
                }
            })).ToList();
            var data = new byte[] { 1, 2, 3 };
            for (int i = 1; i <= 300_000; i++)
            {
                await queue.WriteAsync(Messages.Create(data, origin, i), default);
            }

            stop.Cancel();
            await Task.WhenAll(consumers);
            Assert.Equal(0, Interlocked.Read(ref negative));
            Interlocked.Add(ref reported, queue.TakeUnreportedDrops());
            Assert.Equal(queue.DroppedCount, Interlocked.Read(ref reported));
            Assert.True(queue.DroppedCount > 0, "the test needs drops");
        }
    }
}

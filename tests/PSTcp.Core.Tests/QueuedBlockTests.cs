using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>
    /// Queued messages point into pooled blocks that go back to the pool when their last message
    /// leaves, and a flood's read array is handed to the queue as it is: a block released too
    /// early, or twice, would show as a message whose bytes are another's.
    /// </summary>
    public class QueuedBlockTests
    {
        private const int Clients = 3;
        private const int LinesPerClient = 30000;

        // Line i of client k: its own numbers, then padding of a length that varies, so lines
        // straddle every read boundary.
        private static string Line(int client, long index) => $"c{client}-{index:D6}-" + new string((char)('a' + index % 26), (int)(index * 7 % 190));

        private static byte[] Stream(int client)
        {
            var text = new StringBuilder();
            for (int i = 0; i < LinesPerClient; i++) text.Append(Line(client, i)).Append('\n');
            return Encoding.ASCII.GetBytes(text.ToString());
        }

        /// <summary>Every client sends its lines in 64 KiB writes and reads its echo, all at once.</summary>
        private static async Task FloodAsync(EchoServer server)
        {
            var clients = await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => server.ConnectAsync()));
            try
            {
                await Task.WhenAll(clients.Select((client, k) => Task.Run(async () =>
                {
                    var stream = Stream(k);
                    var reading = client.ReadExactlyAsync(stream.Length, TimeSpan.FromSeconds(60));
                    for (int at = 0; at < stream.Length; at += 64 * 1024)
                    {
                        int n = Math.Min(64 * 1024, stream.Length - at);
                        await client.Socket.SendAsync(new ArraySegment<byte>(stream, at, n), SocketFlags.None);
                    }

                    Assert.Equal(stream, await reading);
                })));
            }
            finally
            {
                foreach (var client in clients) client.Dispose();
            }
        }

        private static int ClientOf(TcpMessage message)
        {
            var text = message.Text;
            Assert.True(text.Length > 2 && text[0] == 'c', $"message {message.Sequence} is '{text}'");
            return text[1] - '0';
        }

        [Fact]
        public async Task MessagesTakenWhileAFloodEvictsAreIntact()
        {
            await using var server = new EchoServer(o =>
            {
                o.QueueCapacity = 500;
                o.QueueFullMode = QueueFullMode.DropOldest;
            });
            long taken = 0;
            var seen = new ConcurrentDictionary<int, long>();
            using var stop = new CancellationTokenSource();
            var consumer = Task.Run(async () =>
            {
                try
                {
                    while (await server.Queue.WaitToReadAsync(stop.Token))
                    {
                        while (server.Queue.TryRead(out var message))
                        {
                            taken++;
                            int client = ClientOf(message);
                            Assert.Equal(Line(client, message.Sequence - 1), message.Text);
                            // A connection's messages come out in order, with gaps only where some were dropped.
                            long last = seen.GetOrAdd(message.ConnectionId, 0);
                            Assert.True(message.Sequence > last, $"sequence {message.Sequence} after {last}");
                            seen[message.ConnectionId] = message.Sequence;
                            if (taken % 64 == 0) await Task.Yield();
                        }
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            });

            await FloodAsync(server);
            await Poll.UntilAsync(() => server.Server.MessagesReceived == Clients * LinesPerClient, "every line counted");
            await Poll.UntilAsync(() => server.Queue.Count == 0 || consumer.IsCompleted, "the consumer caught up");
            stop.Cancel();
            await Poll.WithTimeout(consumer, "consumer");
            Assert.Equal(Clients * LinesPerClient, taken + server.Queue.DroppedCount);
            Assert.True(taken > 0);
        }

        [Fact]
        public async Task AWaitModeQueueGivesEveryLineOfAFloodInOrder()
        {
            await using var server = new EchoServer(o =>
            {
                o.QueueCapacity = 100;
                o.QueueFullMode = QueueFullMode.Wait;
            });
            var next = new ConcurrentDictionary<int, long>();
            var consumer = Queues.TakeAsync(server.Queue, Clients * LinesPerClient, TimeSpan.FromSeconds(60));
            await FloodAsync(server);
            var messages = await consumer;
            foreach (var message in messages)
            {
                int client = ClientOf(message);
                long expected = next.AddOrUpdate(message.ConnectionId, 1, (_, n) => n + 1);
                Assert.Equal(expected, message.Sequence);
                Assert.Equal(Line(client, expected - 1), message.Text);
            }

            Assert.Equal(0, server.Queue.DroppedCount);
        }
    }
}

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>Real client connections (to a listener that never reads) that messages can name as their origin.</summary>
    public sealed class OriginFixture : IDisposable
    {
        private readonly Socket _listener;
        private readonly List<TcpConnection> _origins = new List<TcpConnection>();

        public OriginFixture()
        {
            _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(256);
        }

        internal TcpConnection NewOrigin()
        {
            var port = ((IPEndPoint)_listener.LocalEndPoint).Port;
            var connection = TcpConnection.ConnectAsync("127.0.0.1", port, new ConnectionOptions(), TimeSpan.FromSeconds(10), CancellationToken.None)
                .GetAwaiter().GetResult();
            lock (_origins) _origins.Add(connection);
            return connection;
        }

        public void Dispose()
        {
            lock (_origins)
            {
                foreach (var origin in _origins) origin.Abort();
            }

            _listener.Dispose();
        }
    }

    public class MessageQueueTests : IClassFixture<OriginFixture>
    {
        private readonly OriginFixture _fixture;

        public MessageQueueTests(OriginFixture fixture)
        {
            _fixture = fixture;
        }

        private List<TcpMessage> Messages(int count, TcpConnection origin = null)
        {
            origin ??= _fixture.NewOrigin();
            return Enumerable.Range(1, count)
                .Select(i => PSTcp.Tests.Messages.Create(Encoding.UTF8.GetBytes("m" + i), origin, i))
                .ToList();
        }

        private static List<long> TakeAllNow(MessageQueue queue)
        {
            var list = new List<long>();
            while (queue.TryRead(out var message)) list.Add(message.Sequence);
            return list;
        }

        private static IEnumerable<long> Seq(int from, int count) => Enumerable.Range(from, count).Select(i => (long)i);

        [Fact]
        public void CapacityMustBePositive()
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => new MessageQueue(0, QueueFullMode.Wait));
        }

        [Theory]
        [InlineData(1, 1)]
        [InlineData(5, 3)]
        [InlineData(10, 25)]
        public void DropNewestKeepsTheFirstCapacityAndCountsEachDrop(int capacity, int extra)
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(capacity, QueueFullMode.DropNewest);
            foreach (var message in Messages(capacity + extra, origin))
            {
                Assert.True(queue.WriteAsync(message, default).IsCompletedSuccessfully);
            }

            Assert.Equal(capacity, queue.Count);
            Assert.Equal(extra, queue.DroppedCount);
            Assert.Equal(extra, origin.MessagesDropped);
            Assert.Equal(Seq(1, capacity), TakeAllNow(queue));
        }

        [Theory]
        [InlineData(1, 1)]
        [InlineData(5, 3)]
        [InlineData(10, 25)]
        public void DropOldestKeepsTheLastCapacityAndCountsEachDrop(int capacity, int extra)
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(capacity, QueueFullMode.DropOldest);
            foreach (var message in Messages(capacity + extra, origin))
            {
                Assert.True(queue.WriteAsync(message, default).IsCompletedSuccessfully);
            }

            Assert.Equal(capacity, queue.Count);
            Assert.Equal(extra, queue.DroppedCount);
            Assert.Equal(extra, origin.MessagesDropped);
            Assert.Equal(Seq(extra + 1, capacity), TakeAllNow(queue));
        }

        [Fact]
        public async Task WaitModeWriteCompletesOnlyAfterARead()
        {
            const int capacity = 4;
            var queue = new MessageQueue(capacity, QueueFullMode.Wait);
            var messages = Messages(capacity + 2);
            for (int i = 0; i < capacity; i++)
            {
                Assert.True(queue.WriteAsync(messages[i], default).IsCompletedSuccessfully);
            }

            var blocked = queue.WriteAsync(messages[capacity], default).AsTask();
            await Task.Yield();
            Assert.False(blocked.IsCompleted);
            Assert.Equal(capacity, queue.Count);

            Assert.True(queue.TryRead(out var first));
            Assert.Equal(1, first.Sequence);
            await Poll.WithTimeout(blocked, "the waiting write after a read");

            // Full again: the next write waits too.
            var next = queue.WriteAsync(messages[capacity + 1], default).AsTask();
            await Task.Yield();
            Assert.False(next.IsCompleted);
            var reader = Queues.TakeAsync(queue, capacity + 1);
            await Poll.WithTimeout(next, "second waiting write");
            Assert.Equal(Seq(2, capacity + 1), (await reader).Select(m => m.Sequence));
            Assert.Equal(0, queue.DroppedCount);
        }

        [Fact]
        public async Task WaitModeWriteHonoursCancellation()
        {
            var queue = new MessageQueue(1, QueueFullMode.Wait);
            var messages = Messages(2);
            await queue.WriteAsync(messages[0], default);
            using var cts = new CancellationTokenSource();
            var blocked = queue.WriteAsync(messages[1], cts.Token).AsTask();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Poll.WithTimeout(blocked, "cancelled write"));
            Assert.Equal(new long[] { 1 }, TakeAllNow(queue));
        }

        [Theory]
        [InlineData(QueueFullMode.DropNewest)]
        [InlineData(QueueFullMode.DropOldest)]
        public void TakeUnreportedDropsReportsEachDropOnce(QueueFullMode mode)
        {
            var queue = new MessageQueue(3, mode);
            foreach (var message in Messages(3 + 7)) queue.WriteAsync(message, default);

            Assert.Equal(7, queue.TakeUnreportedDrops());
            Assert.Equal(0, queue.TakeUnreportedDrops());
            Assert.Equal(7, queue.DroppedCount);

            foreach (var message in Messages(2)) queue.WriteAsync(message, default);
            Assert.Equal(2, queue.TakeUnreportedDrops());
            Assert.Equal(0, queue.TakeUnreportedDrops());
            Assert.Equal(9, queue.DroppedCount);
        }

        [Fact]
        public async Task CompleteLetsReadersDrainThenEnds()
        {
            var queue = new MessageQueue(10, QueueFullMode.DropOldest);
            foreach (var message in Messages(5)) await queue.WriteAsync(message, default);
            queue.Complete();

            var drained = await Queues.DrainToEndAsync(queue);
            Assert.Equal(Seq(1, 5), drained.Select(m => m.Sequence));
            Assert.True(queue.IsCompleted);
            Assert.False(await queue.WaitToReadAsync());
        }

        [Theory]
        [InlineData(QueueFullMode.Wait)]
        [InlineData(QueueFullMode.DropOldest)]
        [InlineData(QueueFullMode.DropNewest)]
        public async Task WritesAfterCompleteAreCountedAsDropped(QueueFullMode mode)
        {
            var queue = new MessageQueue(10, mode);
            queue.Complete();
            foreach (var message in Messages(3))
            {
                await Poll.WithTimeout(queue.WriteAsync(message, default).AsTask(), "write to a completed queue");
            }

            Assert.Equal(3, queue.DroppedCount);
            Assert.Equal(0, queue.Count);
        }

        [Fact]
        public async Task CompletingWhileAWriterWaitsCountsItsMessageDropped()
        {
            var queue = new MessageQueue(1, QueueFullMode.Wait);
            var messages = Messages(2);
            await queue.WriteAsync(messages[0], default);
            var blocked = queue.WriteAsync(messages[1], default).AsTask();
            queue.Complete();
            await Poll.WithTimeout(blocked, "waiting write after complete");
            Assert.Equal(1, queue.DroppedCount);
            Assert.Equal(new long[] { 1 }, (await Queues.DrainToEndAsync(queue)).Select(m => m.Sequence));
        }

        [Fact]
        public async Task SeveralReadersGetEachMessageExactlyOnce()
        {
            const int total = 20000;
            var queue = new MessageQueue(16, QueueFullMode.Wait);
            var seen = new ConcurrentBag<long>();
            var perReader = new int[4];
            using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
            var readers = Enumerable.Range(0, perReader.Length).Select(r => Task.Run(async () =>
            {
                while (await queue.WaitToReadAsync(cts.Token))
                {
                    while (queue.TryRead(out var message))
                    {
                        seen.Add(message.Sequence);
                        Interlocked.Increment(ref perReader[r]);
                    }
                }
            })).ToArray();

            var origin = _fixture.NewOrigin();
            var writer = Task.Run(async () =>
            {
                for (int i = 1; i <= total; i++)
                {
                    var message = PSTcp.Tests.Messages.Create(new byte[] { 1 }, origin, i);
                    await queue.WriteAsync(message, cts.Token);
                }

                queue.Complete();
            });

            await Poll.WithTimeout(Task.WhenAll(readers.Append(writer)), "writer and readers");
            var sorted = seen.OrderBy(s => s).ToList();
            Assert.Equal(total, sorted.Count);
            Assert.Equal(Seq(1, total), sorted);
            Assert.Equal(0, queue.DroppedCount);
            Assert.Equal(total, perReader.Sum());
        }

        /// <summary>A read batch as a connection queues it: one block, one frame per message.</summary>
        private sealed class TestBatch
        {
            public MessageBlock Block;
            public PSTcp.Framing.Frame[] Frames;
            public long From;
            public int Count;

            public ValueTask EnqueueAsync(MessageQueue queue, CancellationToken cancellationToken = default) =>
                queue.EnqueueAsync(Block, Frames, 0, Count, From, cancellationToken);
        }

        private static TestBatch Batch(TcpConnection origin, long from, int count) => new TestBatch
        {
            Block = new MessageBlock(Enumerable.Range(0, count).Select(i => (byte)(from + i)).ToArray(), pooled: false, origin, DateTime.UtcNow.Ticks, count),
            Frames = Enumerable.Range(0, count).Select(i => new PSTcp.Framing.Frame(i, 1, 1)).ToArray(),
            From = from,
            Count = count,
        };

        [Theory]
        [InlineData(QueueFullMode.DropOldest, new long[] { 7 }, 6)]
        [InlineData(QueueFullMode.DropNewest, new long[] { 1 }, 6)]
        public void CapacityOneWithABatchDropsExactly(QueueFullMode mode, long[] kept, int dropped)
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(1, mode);
            var batch = Batch(origin, 1, 7);
            Assert.True(batch.EnqueueAsync(queue).IsCompletedSuccessfully);
            Assert.Equal(kept, TakeAllNow(queue));
            // Every message of the block was taken or dropped: nothing points into it.
            Assert.Equal(0, batch.Block.References);
            Assert.Equal(dropped, queue.DroppedCount);
            Assert.Equal(dropped, origin.MessagesDropped);
            Assert.Equal(dropped, queue.TakeUnreportedDrops());
            Assert.Equal(0, queue.TakeUnreportedDrops());
        }

        [Fact]
        public async Task CapacityOneWaitTakesABatchOneAtATimeInOrder()
        {
            var queue = new MessageQueue(1, QueueFullMode.Wait);
            var origin = _fixture.NewOrigin();
            var batch = Batch(origin, 1, 5);
            var writing = batch.EnqueueAsync(queue).AsTask();
            var taken = new List<long>();
            while (taken.Count < 5)
            {
                var message = await Poll.WithTimeout(queue.ReadAsync().AsTask(), "next message");
                taken.Add(message.Sequence);
            }

            await Poll.WithTimeout(writing, "batch written");
            Assert.Equal(Seq(1, 5), taken);
            Assert.Equal(0, queue.DroppedCount);
        }

        [Fact]
        public void RingWrapsAroundAndGrowsKeepingOrder()
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(100, QueueFullMode.DropOldest);
            long next = 1;
            var expected = new Queue<long>();
            var batches = new List<TestBatch>();
            var random = new Random(7);
            for (int round = 0; round < 200; round++)
            {
                int put = random.Next(1, 30);
                var batch = Batch(origin, next, put);
                batches.Add(batch);
                Assert.True(batch.EnqueueAsync(queue).IsCompletedSuccessfully);
                for (int i = 0; i < put; i++) expected.Enqueue(next++);
                while (expected.Count > 100) expected.Dequeue();
                int take = random.Next(0, 30);
                for (int i = 0; i < take && expected.Count > 0; i++)
                {
                    Assert.True(queue.TryRead(out var message));
                    Assert.Equal(expected.Dequeue(), message.Sequence);
                }

                Assert.Equal(expected.Count, queue.Count);
            }

            Assert.Equal(expected.ToList(), TakeAllNow(queue));
            Assert.All(batches, b => Assert.Equal(0, b.Block.References));
        }

        [Fact]
        public void TakenMessagesOwnTheirBytesAndABlockIsReleasedOnceItsLastMessageLeaves()
        {
            var origin = _fixture.NewOrigin();
            var queue = new MessageQueue(3, QueueFullMode.DropOldest);
            var first = Batch(origin, 1, 2);
            var second = Batch(origin, 3, 2);
            Assert.True(first.EnqueueAsync(queue).IsCompletedSuccessfully);
            Assert.True(queue.TryRead(out var one));
            Assert.Equal(1, first.Block.References);
            // The block's bytes may be reused once released: the message has its own copy.
            Array.Clear(first.Block.Array, 0, first.Block.Array.Length);
            Assert.Equal(new byte[] { 1 }, one.Data);
            Assert.True(second.EnqueueAsync(queue).IsCompletedSuccessfully);
            Assert.Equal(1, first.Block.References);
            Assert.True(Batch(origin, 5, 1).EnqueueAsync(queue).IsCompletedSuccessfully);
            // The oldest (first's second message) was evicted to make room.
            Assert.Equal(0, first.Block.References);
            Assert.Equal(2, second.Block.References);
            Assert.Equal(1, queue.DroppedCount);
        }

        [Theory]
        [InlineData(QueueFullMode.DropOldest)]
        [InlineData(QueueFullMode.DropNewest)]
        public async Task ManyWritersAndReadersAccountForEveryMessage(QueueFullMode mode)
        {
            const int writers = 4, batches = 500, perBatch = 7;
            var queue = new MessageQueue(50, mode);
            var origins = Enumerable.Range(0, writers).Select(_ => _fixture.NewOrigin()).ToArray();
            long taken = 0;
            var all = new ConcurrentBag<TestBatch>();
            using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
            var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
            {
                while (await queue.WaitToReadAsync(cts.Token))
                {
                    while (queue.TryRead(out TcpMessage _)) Interlocked.Increment(ref taken);
                }
            })).ToArray();
            var writing = origins.Select(origin => Task.Run(async () =>
            {
                for (int b = 0; b < batches; b++)
                {
                    var batch = Batch(origin, b * perBatch + 1, perBatch);
                    all.Add(batch);
                    await batch.EnqueueAsync(queue, cts.Token);
                }
            })).ToArray();
            await Poll.WithTimeout(Task.WhenAll(writing), "writers");
            queue.Complete();
            await Poll.WithTimeout(Task.WhenAll(readers), "readers");
            Assert.Equal(writers * batches * perBatch, taken + queue.DroppedCount);
            Assert.Equal(queue.DroppedCount, origins.Sum(o => o.MessagesDropped));
            Assert.All(all, b => Assert.Equal(0, b.Block.References));
        }
    }
}

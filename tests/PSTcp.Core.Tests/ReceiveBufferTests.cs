using Xunit;

namespace PSTcp.Tests
{
    public class ReceiveBufferTests
    {
        /// <summary>A buffer holding a partial message of <paramref name="held"/> bytes after a wait (trimmed).</summary>
        private static ReceiveBuffer Holding(int held)
        {
            var buffer = new ReceiveBuffer();
            var segment = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            Assert.Equal(ReceiveBuffer.ReadSize, segment.Count);
            buffer.Advance(held);
            buffer.Trim();
            return buffer;
        }

        [Fact]
        public void DetachLeavesTheArrayAndKeepsTheUnconsumedTailInANewOne()
        {
            var buffer = new ReceiveBuffer();
            var segment = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            for (int i = 0; i < 10; i++) segment.Array[segment.Offset + i] = (byte)i;
            buffer.Advance(10);
            buffer.Consume(7);
            var given = buffer.Array;
            buffer.Detach();
            Assert.NotSame(given, buffer.Array);
            Assert.Equal(new byte[] { 7, 8, 9 }, buffer.Unconsumed.ToArray());
            // Room for (nearly) a full read after the tail: no second copy when the flood goes on.
            Assert.Equal(ReceiveBuffer.ReadSize - 3, buffer.GetWriteSegment(ReceiveBuffer.ReadSize).Count);

            buffer.Consume(3);
            var second = buffer.Array;
            buffer.Detach();
            Assert.Equal(0, buffer.Capacity);
            Assert.Equal(0, buffer.Length);
            System.Buffers.ArrayPool<byte>.Shared.Return(given);
            System.Buffers.ArrayPool<byte>.Shared.Return(second);
        }

        [Fact]
        public void TrimGivesTheArrayBackWhenEverythingWasConsumed()
        {
            var buffer = Holding(100);
            buffer.Consume(100);
            buffer.Trim();
            Assert.Equal(0, buffer.Capacity);
        }

        [Fact]
        public void TrimKeepsAboutTwiceThePartialMessage()
        {
            var buffer = Holding(100);
            Assert.Equal(100, buffer.Length);
            Assert.InRange(buffer.Capacity, 100, 256);
        }

        [Fact]
        public void ADribbleFillsTheTailOfTheSmallArray()
        {
            var buffer = Holding(100);
            int capacity = buffer.Capacity;
            var segment = buffer.GetWriteSegment(ReceiveBuffer.ReadSize, waiting: 1);
            Assert.Equal(capacity - 100, segment.Count);
            Assert.Equal(capacity, buffer.Capacity);
        }

        [Fact]
        public void ABurstOutgrowsTheSmallArrayIntoAFullRead()
        {
            var buffer = Holding(100);
            var segment = buffer.GetWriteSegment(ReceiveBuffer.ReadSize, waiting: 1_000_000);
            Assert.True(segment.Count >= ReceiveBuffer.ReadSize - 100, $"offered {segment.Count} bytes");
            Assert.Equal(100, buffer.Length);
        }

        [Fact]
        public void AFullSmallArrayGrowsInsteadOfCompactingInPlace()
        {
            // The regression: a small array, filled and mostly consumed, was compacted in place,
            // so a flood was read a hundred bytes at a time.
            var buffer = Holding(40);
            var tail = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            buffer.Advance(tail.Count);
            buffer.Consume(buffer.Length - 10);
            var next = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            Assert.True(next.Count >= ReceiveBuffer.ReadSize / 2, $"offered {next.Count} bytes");
        }

        [Fact]
        public void AFullLargeArrayMostlyConsumedIsCompacted()
        {
            var buffer = new ReceiveBuffer();
            var first = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            buffer.Advance(first.Count);
            buffer.Consume(first.Count - 30);
            var next = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            Assert.Equal(ReceiveBuffer.ReadSize, buffer.Capacity);
            Assert.Equal(ReceiveBuffer.ReadSize - 30, next.Count);
            Assert.Equal(0, buffer.Start);
        }

        [Fact]
        public void APartialMessageLongerThanOneReadDoubles()
        {
            var buffer = new ReceiveBuffer();
            var first = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            buffer.Advance(first.Count);
            var next = buffer.GetWriteSegment(ReceiveBuffer.ReadSize);
            Assert.Equal(2 * ReceiveBuffer.ReadSize, buffer.Capacity);
            Assert.Equal(ReceiveBuffer.ReadSize, next.Count);
            Assert.Equal(ReceiveBuffer.ReadSize, buffer.Length);
        }
    }
}

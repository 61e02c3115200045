using System.Buffers;
using System.Threading;

namespace PSTcp
{
    /// <summary>
    /// The bytes of one read batch while its messages are queued, with what they share (the
    /// connection, the time read). Counts the messages that still point into it; when the last
    /// one is taken (copied out) or dropped, a pooled array goes back to the shared pool.
    /// </summary>
    internal sealed class MessageBlock
    {
        private readonly bool _pooled;
        private int _references;

        /// <param name="array">The bytes; with <paramref name="pooled"/>, rented from <see cref="ArrayPool{T}.Shared"/> and owned from here on.</param>
        /// <param name="pooled">Whether the array goes back to the pool at the end.</param>
        /// <param name="origin">The connection the messages came from.</param>
        /// <param name="utcTicks">When they were read.</param>
        /// <param name="references">How many messages point into it.</param>
        public MessageBlock(byte[] array, bool pooled, TcpConnection origin, long utcTicks, int references)
        {
            Array = array;
            _pooled = pooled;
            Origin = origin;
            UtcTicks = utcTicks;
            _references = references;
        }

        public byte[] Array { get; }

        public TcpConnection Origin { get; }

        public long UtcTicks { get; }

        /// <summary>A block of one message: the first bytes of one over the limit (a relay's observation).</summary>
        public bool Truncated { get; set; }

        /// <summary>Messages that still point into the block.</summary>
        internal int References => Volatile.Read(ref _references);

        /// <summary><paramref name="count"/> messages no longer point into the block.</summary>
        public void Release(int count)
        {
            if (count > 0 && Interlocked.Add(ref _references, -count) == 0 && _pooled)
            {
                ArrayPool<byte>.Shared.Return(Array);
            }
        }
    }
}

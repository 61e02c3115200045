using System;
using System.Buffers;

namespace PSTcp
{
    /// <summary>
    /// One connection's received bytes not yet framed, in one array from the shared pool that
    /// is sized to what it holds: a read offers a 64 KiB tail, small reads fill the tail of the
    /// current array instead of taking a new one, and before the connection waits for more data
    /// the array is given back (nothing held) or swapped for one about twice the partial
    /// message's size. So a partial message of N bytes costs O(N) however it was chunked, and
    /// an idle connection holds no buffer.
    /// </summary>
    internal sealed class ReceiveBuffer
    {
        /// <summary>What a read offers when the buffer starts empty, as Kestrel and Go's bufio do.</summary>
        public const int ReadSize = 64 * 1024;

        private const int SmallestArray = 64;

        private byte[] _array;
        private int _start;
        private int _end;

        /// <summary>Bytes held, not yet consumed.</summary>
        public int Length => _end - _start;

        /// <summary>Size of the array held (0 when none): what this connection costs in buffers.</summary>
        public int Capacity => _array?.Length ?? 0;

        public byte[] Array => _array;

        /// <summary>Where the unconsumed bytes start in <see cref="Array"/>.</summary>
        public int Start => _start;

        public ReadOnlySpan<byte> Unconsumed => new ReadOnlySpan<byte>(_array, _start, _end - _start);

        /// <summary>
        /// Room to read into at the end, at most <paramref name="maxRead"/> bytes. A small array
        /// (kept for a partial message) is read into while what is waiting fits its tail
        /// (<paramref name="waiting"/>: bytes the socket holds, when known); otherwise it grows
        /// to a full read.
        /// </summary>
        public ArraySegment<byte> GetWriteSegment(int maxRead, int waiting = 0)
        {
            if (_array == null)
            {
                _array = ArrayPool<byte>.Shared.Rent(Math.Min(ReadSize, Math.Max(SmallestArray, maxRead)));
                _start = _end = 0;
            }
            else if (_end == _array.Length || (_array.Length < ReadSize && waiting > _array.Length - _end))
            {
                int length = Length;
                if (_array.Length >= ReadSize && _start >= _array.Length / 2)
                {
                    // Mostly consumed: move the rest to the front.
                    Buffer.BlockCopy(_array, _start, _array, 0, length);
                    _start = 0;
                    _end = length;
                }
                else
                {
                    // A small array outgrown, or a full one holding one partial message: at
                    // least a full read, doubling beyond (amortised O(N) copying).
                    Replace(Math.Max(ReadSize, checked(length * 2)));
                }
            }

            return new ArraySegment<byte>(_array, _end, Math.Min(_array.Length - _end, maxRead));
        }

        public void Advance(int count) => _end += count;

        public void Consume(int count)
        {
            _start += count;
            if (_start == _end) _start = _end = 0;
        }

        /// <summary>
        /// Before waiting for data: hold nothing if everything was consumed, else an array about
        /// twice what is held.
        /// </summary>
        public void Trim()
        {
            if (_array == null) return;
            int length = Length;
            if (length == 0)
            {
                Release();
                return;
            }

            int fit = Math.Max(SmallestArray, RoundUpToPowerOfTwo(length) * 2);
            if (_array.Length > fit)
            {
                Replace(fit);
            }
        }

        /// <summary>
        /// The array now belongs to someone else (the queue took it with the messages it holds):
        /// the bytes not yet consumed move to an array of their own, ready for a full read.
        /// </summary>
        public void Detach()
        {
            if (Length == 0)
            {
                _array = null;
                _start = _end = 0;
                return;
            }

            Replace(Math.Max(ReadSize, checked(Length * 2)), giveBack: false);
        }

        /// <summary>Gives the array back to the pool.</summary>
        public void Release()
        {
            var array = _array;
            _array = null;
            _start = _end = 0;
            if (array != null) ArrayPool<byte>.Shared.Return(array);
        }

        private void Replace(int size, bool giveBack = true)
        {
            var array = ArrayPool<byte>.Shared.Rent(size);
            int length = Length;
            Buffer.BlockCopy(_array, _start, array, 0, length);
            if (giveBack) ArrayPool<byte>.Shared.Return(_array);
            _array = array;
            _start = 0;
            _end = length;
        }

        private static int RoundUpToPowerOfTwo(int value)
        {
            int power = 1;
            while (power < value && power < (1 << 30)) power <<= 1;
            return power;
        }
    }
}

using System;

namespace PSTcp.Framing
{
    /// <summary>
    /// Length-prefixed framing: a 1, 2, 4 or 8 byte unsigned length, then that many bytes. A
    /// declared length over the limit is refused as soon as the prefix is read, before any of
    /// the payload is buffered.
    /// </summary>
    public sealed class LengthPrefixFramer : Framer
    {
        private readonly int _prefixSize;
        private readonly bool _bigEndian;

        public LengthPrefixFramer(int prefixSize, ByteOrder byteOrder, int maxMessageLength)
            : base(maxMessageLength)
        {
            if (prefixSize != 1 && prefixSize != 2 && prefixSize != 4 && prefixSize != 8)
            {
                throw new ArgumentOutOfRangeException(nameof(prefixSize), "The prefix size must be 1, 2, 4 or 8 bytes.");
            }

            _prefixSize = prefixSize;
            _bigEndian = byteOrder == ByteOrder.BigEndian;
        }

        public int PrefixSize => _prefixSize;

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            if (buffer.Length < _prefixSize)
            {
                frame = new Frame(0, 0, _prefixSize);
                return FrameStatus.NeedMoreData;
            }

            ulong length = ReadLength(buffer.Slice(0, _prefixSize), _bigEndian);
            if (length > (ulong)MaxMessageLength)
            {
                frame = default;
                return FrameStatus.TooLong;
            }

            int total = _prefixSize + (int)length;
            frame = new Frame(_prefixSize, (int)length, total);
            return buffer.Length >= total ? FrameStatus.Frame : FrameStatus.NeedMoreData;
        }

        internal static ulong ReadLength(ReadOnlySpan<byte> prefix, bool bigEndian)
        {
            ulong value = 0;
            for (int i = 0; i < prefix.Length; i++)
            {
                byte b = bigEndian ? prefix[i] : prefix[prefix.Length - 1 - i];
                value = (value << 8) | b;
            }

            return value;
        }

        /// <summary>Writes <paramref name="length"/> as a prefix of <paramref name="prefix"/>'s size.</summary>
        internal static void WriteLength(Span<byte> prefix, ulong length, bool bigEndian)
        {
            for (int i = 0; i < prefix.Length; i++)
            {
                byte b = (byte)(length >> (8 * i));
                if (bigEndian) prefix[prefix.Length - 1 - i] = b; else prefix[i] = b;
            }
        }
    }

    /// <summary>Fixed-length framing: every message is exactly the same number of bytes.</summary>
    public sealed class FixedLengthFramer : Framer
    {
        private readonly int _length;

        public FixedLengthFramer(int messageLength, int maxMessageLength)
            : base(maxMessageLength)
        {
            if (messageLength < 1) throw new ArgumentOutOfRangeException(nameof(messageLength), "The message length must be at least 1.");
            if (messageLength > maxMessageLength)
            {
                throw new ArgumentOutOfRangeException(nameof(messageLength), $"The message length ({messageLength}) is over the maximum message length ({maxMessageLength}).");
            }

            _length = messageLength;
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            frame = new Frame(0, _length, _length);
            return buffer.Length >= _length ? FrameStatus.Frame : FrameStatus.NeedMoreData;
        }
    }

    /// <summary>Raw: whatever one read delivered is one message (the caller frames once per read).</summary>
    public sealed class RawFramer : Framer
    {
        public RawFramer(int maxMessageLength)
            : base(maxMessageLength)
        {
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            if (buffer.IsEmpty)
            {
                frame = default;
                return FrameStatus.NeedMoreData;
            }

            // Reads are never larger than the limit (the connection sizes them so), so a read
            // is a message; anything longer is cut at the limit rather than refused.
            int length = Math.Min(buffer.Length, MaxMessageLength);
            frame = new Frame(0, length, length);
            return FrameStatus.Frame;
        }
    }
}

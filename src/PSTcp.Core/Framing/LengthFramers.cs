using System;

namespace PSTcp.Framing
{
    /// <summary>
    /// Length-field framing as real protocols lay it out: <c>offset</c> bytes of header (kept
    /// in the payload), a length field (1, 2, 3, 4 or 8 bytes in either byte order, or a
    /// base-128 varint), then the field's value plus <c>adjustment</c> bytes. The payload is the
    /// header then those bytes, the field left out. A declared length over the limit is refused
    /// as soon as the field is read, before any of the payload is buffered.
    /// </summary>
    public sealed class LengthPrefixFramer : Framer
    {
        /// <summary>Longest varint read: 63 bits of length.</summary>
        internal const int MaxVarintSize = 9;

        private readonly int _prefixSize;
        private readonly bool _bigEndian;
        private readonly int _offset;
        private readonly int _adjustment;
        private readonly bool _varint;

        public LengthPrefixFramer(int prefixSize, ByteOrder byteOrder, int maxMessageLength)
            : this(prefixSize, byteOrder, maxMessageLength, 0, 0, PrefixEncoding.Binary)
        {
        }

        public LengthPrefixFramer(int prefixSize, ByteOrder byteOrder, int maxMessageLength, int prefixOffset, int lengthAdjustment, PrefixEncoding encoding)
            : base(maxMessageLength)
        {
            if (encoding == PrefixEncoding.Binary && !IsValidSize(prefixSize))
            {
                throw new ArgumentOutOfRangeException(nameof(prefixSize), "The prefix size must be 1, 2, 3, 4 or 8 bytes.");
            }

            if (prefixOffset < 0) throw new ArgumentOutOfRangeException(nameof(prefixOffset), "The prefix offset can't be negative.");
            _prefixSize = prefixSize;
            _bigEndian = byteOrder == ByteOrder.BigEndian;
            _offset = prefixOffset;
            _adjustment = lengthAdjustment;
            _varint = encoding == PrefixEncoding.Varint;
        }

        internal static bool IsValidSize(int size) => size == 1 || size == 2 || size == 3 || size == 4 || size == 8;

        public int PrefixSize => _prefixSize;

        public override int KeptHeaderLength => _offset;

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            ulong value;
            int fieldSize;
            if (_varint)
            {
                fieldSize = 0;
                value = 0;
                while (true)
                {
                    if (buffer.Length < _offset + fieldSize + 1)
                    {
                        frame = new Frame(0, 0, _offset + fieldSize + 1);
                        return FrameStatus.NeedMoreData;
                    }

                    byte b = buffer[_offset + fieldSize];
                    value |= (ulong)(b & 0x7F) << (7 * fieldSize);
                    fieldSize++;
                    if ((b & 0x80) == 0) break;
                    if (fieldSize == MaxVarintSize || value > (ulong)MaxMessageLength + (ulong)Math.Abs((long)_adjustment))
                    {
                        // Already longer than anything accepted, whatever bytes follow.
                        frame = default;
                        return FrameStatus.TooLong;
                    }
                }
            }
            else
            {
                fieldSize = _prefixSize;
                if (buffer.Length < _offset + fieldSize)
                {
                    frame = new Frame(0, 0, _offset + fieldSize);
                    return FrameStatus.NeedMoreData;
                }

                value = ReadLength(buffer.Slice(_offset, fieldSize), _bigEndian);
            }

            if (value > int.MaxValue)
            {
                frame = default;
                return FrameStatus.TooLong;
            }

            long after = (long)value + _adjustment;
            if (after < 0)
            {
                InvalidReason = $"the length field says {value}, which with the length adjustment of {_adjustment} is {after} bytes";
                frame = default;
                return FrameStatus.Invalid;
            }

            long length = _offset + after;
            if (length > MaxMessageLength)
            {
                frame = default;
                return FrameStatus.TooLong;
            }

            int total = _offset + fieldSize + (int)after;
            // With a kept header the payload lies at the field's place once compacted (see Framer.Compact).
            frame = new Frame(fieldSize, (int)length, total);
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

        /// <summary>Writes <paramref name="value"/> as a base-128 varint; returns its size.</summary>
        internal static int WriteVarint(Span<byte> output, ulong value)
        {
            int n = 0;
            do
            {
                byte b = (byte)(value & 0x7F);
                value >>= 7;
                if (value != 0) b |= 0x80;
                output[n++] = b;
            }
            while (value != 0);
            return n;
        }
    }

    /// <summary>
    /// An ASCII decimal length, a separator, then that many bytes (and for netstrings a trailing
    /// comma): RFC 6587's octet counting (<c>LEN SP MSG</c>) and netstrings (<c>LEN:payload,</c>).
    /// A declared length over the limit is refused as soon as its digits say so.
    /// </summary>
    public sealed class DecimalLengthFramer : Framer
    {
        private const int MaxDigits = 10;
        private readonly byte _separator;
        private readonly byte _trailer;
        private readonly bool _hasTrailer;
        private readonly string _name;

        /// <param name="netstring">True: <c>LEN:payload,</c>; false: <c>LEN SP payload</c>.</param>
        /// <param name="maxMessageLength">Longest payload accepted.</param>
        public DecimalLengthFramer(bool netstring, int maxMessageLength)
            : base(maxMessageLength)
        {
            _separator = netstring ? (byte)':' : (byte)' ';
            _hasTrailer = netstring;
            _trailer = (byte)',';
            _name = netstring ? "netstring" : "octet count";
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            frame = default;
            long value = 0;
            int digits = 0;
            while (true)
            {
                if (digits == buffer.Length)
                {
                    frame = new Frame(0, 0, digits + 1);
                    return FrameStatus.NeedMoreData;
                }

                byte b = buffer[digits];
                if (b >= (byte)'0' && b <= (byte)'9')
                {
                    value = value * 10 + (b - '0');
                    digits++;
                    if (value > MaxMessageLength) return FrameStatus.TooLong;
                    if (digits > MaxDigits) return FrameStatus.TooLong;
                    continue;
                }

                if (b == _separator && digits > 0) break;
                InvalidReason = digits == 0
                    ? $"a {_name} frame must start with its length in ASCII digits, not the byte 0x{b:X2}"
                    : $"the {_name} length {value} is followed by the byte 0x{b:X2}, not '{(char)_separator}'";
                return FrameStatus.Invalid;
            }

            int payloadOffset = digits + 1;
            int total = payloadOffset + (int)value + (_hasTrailer ? 1 : 0);
            frame = new Frame(payloadOffset, (int)value, total);
            if (buffer.Length < total) return FrameStatus.NeedMoreData;
            if (_hasTrailer && buffer[total - 1] != _trailer)
            {
                InvalidReason = $"the netstring of {value} bytes ends with the byte 0x{buffer[total - 1]:X2}, not ','";
                frame = default;
                return FrameStatus.Invalid;
            }

            return FrameStatus.Frame;
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

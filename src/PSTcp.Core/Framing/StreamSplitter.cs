using System;
using System.Text;
using System.Text.RegularExpressions;

namespace PSTcp
{
    /// <summary>
    /// Cuts one message off the front of a byte stream that arrives piece by piece: the bytes up
    /// to and including the first match of a pattern, or exactly a byte count (pwntools'
    /// recvuntil and recvn). What follows the message stays for the next receive.
    /// </summary>
    public sealed class StreamSplitter
    {
        private static readonly Encoding Latin1 = Encoding.GetEncoding(28591);
        private readonly Encoding _encoding;
        private readonly Regex _until;
        private readonly int _byteCount;
        private byte[] _buffer = new byte[256];
        private int _length;

        private StreamSplitter(Encoding encoding, Regex until, int byteCount)
        {
            _encoding = encoding ?? throw new ArgumentNullException(nameof(encoding));
            _until = until;
            _byteCount = byteCount;
        }

        /// <summary>Messages end with the first match of <paramref name="until"/> in the text decoded with <paramref name="encoding"/>.</summary>
        public static StreamSplitter ForPattern(Regex until, Encoding encoding) =>
            new StreamSplitter(encoding, until ?? throw new ArgumentNullException(nameof(until)), 0);

        /// <summary>Messages are exactly <paramref name="byteCount"/> bytes.</summary>
        public static StreamSplitter ForByteCount(int byteCount) =>
            byteCount < 1 ? throw new ArgumentOutOfRangeException(nameof(byteCount)) : new StreamSplitter(Encoding.UTF8, null, byteCount);

        /// <summary>Bytes gathered and not yet taken.</summary>
        public int Length => _length;

        public void Append(ReadOnlySpan<byte> data)
        {
            if (_length + data.Length > _buffer.Length)
            {
                var bigger = new byte[Math.Max(_buffer.Length * 2, _length + data.Length)];
                Buffer.BlockCopy(_buffer, 0, bigger, 0, _length);
                _buffer = bigger;
            }

            data.CopyTo(new Span<byte>(_buffer, _length, data.Length));
            _length += data.Length;
        }

        /// <summary>The length in bytes of the message at the front, once it is all there; otherwise -1.</summary>
        public int FindEnd() => _until == null ? (_length >= _byteCount ? _byteCount : -1) : MatchEnd();

        /// <summary>Removes and returns the first <paramref name="length"/> bytes.</summary>
        public byte[] Take(int length)
        {
            if (length < 0 || length > _length) throw new ArgumentOutOfRangeException(nameof(length));
            var taken = new byte[length];
            Buffer.BlockCopy(_buffer, 0, taken, 0, length);
            Buffer.BlockCopy(_buffer, length, _buffer, 0, _length - length);
            _length -= length;
            return taken;
        }

        /// <summary>Removes and returns everything gathered.</summary>
        public byte[] TakeAll() => Take(_length);

        private int MatchEnd()
        {
            // The whole buffer is searched again on each read: a match may span reads, and a
            // regex can't resume. The caller bounds the buffer (the source's message limit).
            var text = _encoding.GetString(_buffer, 0, _length);
            var match = _until.Match(text);
            if (!match.Success) return -1;
            int end = match.Index + match.Length;
            int bytes = _encoding.GetByteCount(text.ToCharArray(), 0, end);
            if (bytes <= _length && EncodesTo(text, end, bytes))
            {
                return bytes;
            }

            // Invalid bytes before the match (decoded as U+FFFD) blur the char-to-byte mapping:
            // match again with one char per byte, exact for ASCII patterns.
            match = _until.Match(Latin1.GetString(_buffer, 0, _length));
            return match.Success ? match.Index + match.Length : -1;
        }

        private bool EncodesTo(string text, int chars, int bytes)
        {
            var encoded = _encoding.GetBytes(text.ToCharArray(), 0, chars);
            return new ReadOnlySpan<byte>(_buffer, 0, bytes).SequenceEqual(encoded);
        }
    }
}

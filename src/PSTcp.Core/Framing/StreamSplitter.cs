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
    /// <remarks>
    /// Cost: a pattern is matched, after each read, only against what is new plus a look-back
    /// (the pattern's byte length when it is a literal, else <see cref="DefaultLookBack"/>
    /// bytes), not the whole buffer again; a match found there is confirmed against the whole
    /// buffer, so anchors and look-behinds mean what they do on the whole text. A match that
    /// spans more than the look-back is still found, by a match over the whole buffer each time
    /// the buffer has doubled (and by <see cref="FindEndFully"/> before a receive gives up), so the
    /// total work stays linear in the bytes gathered. A byte count grows its buffer at most to
    /// the count (no arithmetic overflow up to <see cref="MaxByteCount"/>) and hands that array
    /// over without a copy.
    /// </remarks>
    public sealed class StreamSplitter
    {
        /// <summary>The largest -ByteCount: the largest byte array .NET allows.</summary>
        public const int MaxByteCount = 0x7FFFFFC7;

        /// <summary>Bytes before the new ones that a non-literal pattern's match is looked for in.</summary>
        public const int DefaultLookBack = 1024;

        private static readonly Encoding Latin1 = Encoding.GetEncoding(28591);
        private readonly Encoding _encoding;
        private readonly int _byteCount;
        private readonly int _lookBack;
        private readonly bool _windowed;
        private byte[] _buffer = Array.Empty<byte>();
        private int _length;
        // -Until: bytes already searched (no match ended there), and when the next full search is due.
        private int _searched;
        private long _fullSearchAt;

        private StreamSplitter(Encoding encoding, Regex until, int byteCount)
        {
            _encoding = encoding ?? throw new ArgumentNullException(nameof(encoding));
            Pattern = until;
            _byteCount = byteCount;
            if (until != null)
            {
                _lookBack = LiteralByteLength(until, encoding) ?? DefaultLookBack;
                // A window must start on a character: UTF-8 and single-byte encodings say where.
                _windowed = encoding is UTF8Encoding || encoding.IsSingleByte;
                _fullSearchAt = 2L * Math.Max(_lookBack, 256);
            }
        }

        /// <summary>Messages end with the first match of <paramref name="until"/> in the text decoded with <paramref name="encoding"/>.</summary>
        public static StreamSplitter ForPattern(Regex until, Encoding encoding) =>
            new StreamSplitter(encoding, until ?? throw new ArgumentNullException(nameof(until)), 0);

        /// <summary>Messages are exactly <paramref name="byteCount"/> bytes (0 to <see cref="MaxByteCount"/>).</summary>
        public static StreamSplitter ForByteCount(int byteCount) =>
            byteCount < 0 || byteCount > MaxByteCount ? throw new ArgumentOutOfRangeException(nameof(byteCount)) : new StreamSplitter(Encoding.UTF8, null, byteCount);

        /// <summary>The pattern (replaceable, e.g. by the same one with a shorter match timeout); null for a byte count.</summary>
        public Regex Pattern { get; set; }

        /// <summary>Bytes gathered and not yet taken.</summary>
        public int Length => _length;

        /// <summary>The size of the array that holds them.</summary>
        internal int Capacity => _buffer.Length;

        /// <summary>How many bytes a -Until match may reach back before the newest read and still be found at once.</summary>
        public int LookBack => _lookBack;

        public void Append(ReadOnlySpan<byte> data)
        {
            if (data.Length > _buffer.Length - _length)
            {
                long needed = (long)_length + data.Length;
                if (needed > MaxByteCount) throw new InvalidOperationException($"A stream read can't gather more than {MaxByteCount:N0} bytes.");
                // Doubling, in long arithmetic, capped by the array limit and (for a byte count
                // that is not yet met) by the count itself: one array of the count's size, no overflow.
                long size = Math.Max(Math.Max(256, 2L * _buffer.Length), needed);
                if (Pattern == null && _length < _byteCount && needed <= _byteCount) size = Math.Min(size, _byteCount);
                size = Math.Min(size, MaxByteCount);
                var bigger = new byte[size];
                Buffer.BlockCopy(_buffer, 0, bigger, 0, _length);
                _buffer = bigger;
            }

            data.CopyTo(new Span<byte>(_buffer, _length, data.Length));
            _length += data.Length;
        }

        /// <summary>The length in bytes of the message at the front, once it is all there; otherwise -1.</summary>
        public int FindEnd() => Pattern == null ? (_length >= _byteCount ? _byteCount : -1) : MatchEnd(full: false);

        /// <summary>As <see cref="FindEnd"/>, but a pattern is matched against the whole buffer (before a receive gives up).</summary>
        public int FindEndFully() => Pattern == null ? FindEnd() : MatchEnd(full: true);

        /// <summary>Removes and returns the first <paramref name="length"/> bytes.</summary>
        public byte[] Take(int length)
        {
            if (length < 0 || length > _length) throw new ArgumentOutOfRangeException(nameof(length));
            byte[] taken;
            if (length == _buffer.Length)
            {
                // The buffer is exactly the message (a byte count's): hand it over.
                taken = _buffer;
                _buffer = Array.Empty<byte>();
            }
            else
            {
                taken = new byte[length];
                Buffer.BlockCopy(_buffer, 0, taken, 0, length);
                Buffer.BlockCopy(_buffer, length, _buffer, 0, _length - length);
            }

            _length -= length;
            _searched = 0;
            return taken;
        }

        /// <summary>Removes and returns everything gathered.</summary>
        public byte[] TakeAll() => Take(_length);

        private int MatchEnd(bool full)
        {
            if (!full && _length == _searched) return -1;
            int start = 0;
            if (!full && _windowed && _length < _fullSearchAt)
            {
                start = Math.Max(0, _searched - _lookBack);
                // Back to the start of a UTF-8 character.
                if (!_encoding.IsSingleByte)
                {
                    while (start > 0 && (_buffer[start] & 0xC0) == 0x80) start--;
                }
            }
            else if (!full)
            {
                _fullSearchAt = Math.Max(_fullSearchAt, 2L * _length);
            }

            _searched = _length;
            int end = MatchEnd(start);
            if (end >= 0 && start > 0)
            {
                // Confirmed (and made the leftmost) against the whole buffer: ^, \b and
                // look-behinds see what precedes the window.
                end = MatchEnd(0);
            }

            return end;
        }

        // The end of the first match in _buffer[start.._length), as a length from the buffer's start; else -1.
        private int MatchEnd(int start)
        {
            int count = _length - start;
            var text = _encoding.GetString(_buffer, start, count);
            var match = Pattern.Match(text);
            if (!match.Success) return -1;
            int end = match.Index + match.Length;
            int bytes = _encoding.GetByteCount(text.ToCharArray(), 0, end);
            if (bytes <= count && EncodesTo(text, end, start, bytes))
            {
                return start + bytes;
            }

            // Invalid bytes before the match (decoded as U+FFFD) blur the char-to-byte mapping:
            // match again with one char per byte, exact for ASCII patterns.
            match = Pattern.Match(Latin1.GetString(_buffer, start, count));
            return match.Success ? start + match.Index + match.Length : -1;
        }

        private bool EncodesTo(string text, int chars, int start, int bytes)
        {
            var encoded = _encoding.GetBytes(text.ToCharArray(), 0, chars);
            return new ReadOnlySpan<byte>(_buffer, start, bytes).SequenceEqual(encoded);
        }

        // A pattern that is a plain literal (as -SimpleMatch makes it) spans at most its own bytes.
        private static int? LiteralByteLength(Regex pattern, Encoding encoding)
        {
            var text = pattern.ToString();
            string literal;
            try
            {
                literal = Regex.Unescape(text);
            }
            catch (ArgumentException)
            {
                return null;
            }

            if (Regex.Escape(literal) != text || (pattern.Options & RegexOptions.IgnorePatternWhitespace) != 0) return null;
            return Math.Max(1, encoding.GetMaxByteCount(literal.Length));
        }
    }
}

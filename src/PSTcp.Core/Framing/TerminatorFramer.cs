using System;

namespace PSTcp.Framing
{
    /// <summary>
    /// Frames that end with a terminator (Line's LF, or a delimiter), matched as encoded and on
    /// code-unit boundaries (2 bytes for UTF-16, 4 for UTF-32). Remembers how far it searched,
    /// so a line dribbled one byte per read is scanned once, not once per read.
    /// </summary>
    public abstract class TerminatorFramer : Framer
    {
        private readonly byte[] _terminator;
        private readonly int _alignment;
        // What right before the terminator is not part of the payload (Line's CR as encoded), or nothing.
        private readonly byte[] _strip;
        private int _searched;

        protected TerminatorFramer(byte[] terminator, int alignment, int maxMessageLength)
            : this(terminator, alignment, null, maxMessageLength)
        {
        }

        private protected TerminatorFramer(byte[] terminator, int alignment, byte[] strip, int maxMessageLength)
            : base(maxMessageLength)
        {
            if (terminator == null || terminator.Length == 0) throw new ArgumentException("The terminator can't be empty.", nameof(terminator));
            if (alignment < 1) throw new ArgumentOutOfRangeException(nameof(alignment));
            _terminator = terminator;
            _alignment = alignment;
            _strip = strip ?? Array.Empty<byte>();
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame) => Next(buffer, out frame);

        public override FrameStatus TryReadFinal(ReadOnlySpan<byte> rest, out Frame frame)
        {
            _searched = 0;
            frame = new Frame(0, rest.Length, rest.Length);
            return rest.Length > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.Frame;
        }

        public override void Reset() => _searched = 0;

        /// <summary>
        /// Inside a message over the limit (<paramref name="buffer"/> starts where it starts, or
        /// where the last skip stopped): how many bytes to pass over, its terminator included
        /// when <paramref name="found"/>; else all but what may begin a terminator (whole code units).
        /// </summary>
        internal int SkipToTerminator(ReadOnlySpan<byte> buffer, out bool found)
        {
            int end = IndexOfTerminator(buffer, 0);
            found = end >= 0;
            if (found) return end + _terminator.Length;
            int skip = Math.Max(0, buffer.Length - _terminator.Length + 1);
            return skip - skip % _alignment;
        }

        /// <summary>The rules, once: find the terminator (resuming the last search), strip, check the limit.</summary>
        private FrameStatus Next(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            int end = IndexOfTerminator(buffer, _searched);
            if (end < 0)
            {
                frame = default;
                // Next time, resume where a terminator could still start (aligned).
                int resume = Math.Max(0, buffer.Length - _terminator.Length + 1);
                _searched = _alignment == 1 ? resume : resume - resume % _alignment;
                // Slack for the terminator (and a CR) that may yet complete the message.
                // The payload will be at least what is here, less a partial terminator and the slack.
                return buffer.Length - (_terminator.Length - 1) - _strip.Length > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.NeedMoreData;
            }

            _searched = 0;
            int strip = end - _strip.Length;
            int payload = _strip.Length > 0 && strip >= 0 && buffer.Slice(strip, _strip.Length).SequenceEqual(_strip) ? strip : end;
            frame = new Frame(0, payload, end + _terminator.Length);
            return payload > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.Frame;
        }

        private int IndexOfTerminator(ReadOnlySpan<byte> buffer, int from)
        {
            var terminator = _terminator;
            byte first = terminator[0];
            if (terminator.Length == 1 && _alignment == 1)
            {
                // UTF-8 and ASCII lines, one-byte delimiters: one search, no alignment to check.
                int i = buffer.Slice(from).IndexOf(first);
                return i < 0 ? -1 : from + i;
            }

            while (from <= buffer.Length - terminator.Length)
            {
                int i = buffer.Slice(from).IndexOf(first);
                if (i < 0) return -1;
                int at = from + i;
                if (at % _alignment == 0 && at + terminator.Length <= buffer.Length
                    && (terminator.Length == 1 || buffer.Slice(at, terminator.Length).SequenceEqual(terminator)))
                {
                    return at;
                }

                from = at + 1;
            }

            return -1;
        }
    }

    /// <summary>Line framing: a message ends at LF, and one CR right before the LF is not part of it.</summary>
    public sealed class LineFramer : TerminatorFramer
    {
        /// <param name="lineFeed">LF as encoded (0A, or 0A 00 in UTF-16LE, ...).</param>
        /// <param name="carriageReturn">CR as encoded, the same length as <paramref name="lineFeed"/> (empty: none).</param>
        /// <param name="maxMessageLength">Longest payload accepted.</param>
        public LineFramer(byte[] lineFeed, byte[] carriageReturn, int maxMessageLength)
            : base(lineFeed, lineFeed.Length, carriageReturn, maxMessageLength)
        {
        }

        /// <summary>Single-byte LF framing (UTF-8, ASCII, Latin-1, ...).</summary>
        public LineFramer(int maxMessageLength)
            : this(new[] { (byte)'\n' }, new[] { (byte)'\r' }, maxMessageLength)
        {
        }
    }

    /// <summary>Delimiter framing: a message ends with the delimiter; nothing else is stripped.</summary>
    public sealed class DelimiterFramer : TerminatorFramer
    {
        public DelimiterFramer(byte[] delimiter, int alignment, int maxMessageLength)
            : base(delimiter, alignment, maxMessageLength)
        {
        }
    }
}

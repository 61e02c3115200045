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
        private int _searched;

        // The common case (one-byte terminator, byte-aligned: UTF-8 and ASCII lines) has a fast
        // path; _strip is the one byte before it that is not part of the payload (Line's CR), or -1.
        private readonly bool _singleByte;
        private readonly int _strip;

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
            _singleByte = terminator.Length == 1 && alignment == 1 && (strip == null || strip.Length <= 1);
            _strip = strip != null && strip.Length == 1 ? strip[0] : -1;
        }

        internal override FrameStatus ReadFrames(ReadOnlySpan<byte> buffer, Span<Frame> frames, int limit, out int count, out int consumed)
        {
            if (!_singleByte) return base.ReadFrames(buffer, frames, limit, out count, out consumed);

            // TryReadFrame's rules, in one loop: find the terminator (resuming where the last
            // search stopped), strip the byte before it if that is the strip byte, check the limit.
            byte terminator = _terminator[0];
            bool record = !frames.IsEmpty;
            int max = MaxMessageLength;
            int slack = _strip >= 0 ? 1 : 0;
            int position = 0;
            int from = _searched;
            count = 0;
            while (true)
            {
                int left = buffer.Length - position;
                if (left == 0 || count == limit)
                {
                    consumed = position;
                    return left == 0 ? FrameStatus.NeedMoreData : FrameStatus.Frame;
                }

                int found = buffer.Slice(position + from).IndexOf(terminator);
                if (found < 0)
                {
                    _searched = left;
                    consumed = position;
                    return left - slack > max ? FrameStatus.TooLong : FrameStatus.NeedMoreData;
                }

                int end = from + found;
                from = 0;
                _searched = 0;
                int payload = end > 0 && buffer[position + end - 1] == _strip ? end - 1 : end;
                if (payload > max)
                {
                    consumed = position;
                    return FrameStatus.TooLong;
                }

                if (record) frames[count] = new Frame(position, payload, end + 1);
                count++;
                position += end + 1;
            }
        }

        public override FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame)
        {
            int end = IndexOfTerminator(buffer, _searched);
            if (end < 0)
            {
                frame = default;
                // Next time, resume where a terminator could still start (aligned).
                int resume = Math.Max(0, buffer.Length - _terminator.Length + 1);
                _searched = resume - resume % _alignment;
                // Slack for the terminator (and a CR) that may yet complete the message.
                // The payload will be at least what is here, less a partial terminator and the slack.
                return buffer.Length - (_terminator.Length - 1) - Slack > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.NeedMoreData;
            }

            _searched = 0;
            int payload = PayloadLength(buffer, end);
            frame = new Frame(0, payload, end + _terminator.Length);
            return payload > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.Frame;
        }

        public override FrameStatus TryReadFinal(ReadOnlySpan<byte> rest, out Frame frame)
        {
            _searched = 0;
            frame = new Frame(0, rest.Length, rest.Length);
            return rest.Length > MaxMessageLength ? FrameStatus.TooLong : FrameStatus.Frame;
        }

        public override void Reset() => _searched = 0;

        /// <summary>Extra bytes a message may carry besides its payload and terminator (Line: the CR).</summary>
        protected virtual int Slack => 0;

        /// <summary>The payload's length given where the terminator starts.</summary>
        protected virtual int PayloadLength(ReadOnlySpan<byte> buffer, int terminatorStart) => terminatorStart;

        private int IndexOfTerminator(ReadOnlySpan<byte> buffer, int from)
        {
            var terminator = _terminator;
            byte first = terminator[0];
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
        private readonly byte[] _carriageReturn;

        /// <param name="lineFeed">LF as encoded (0A, or 0A 00 in UTF-16LE, ...).</param>
        /// <param name="carriageReturn">CR as encoded, the same length as <paramref name="lineFeed"/> (empty: none).</param>
        /// <param name="maxMessageLength">Longest payload accepted.</param>
        public LineFramer(byte[] lineFeed, byte[] carriageReturn, int maxMessageLength)
            : base(lineFeed, lineFeed.Length, carriageReturn, maxMessageLength)
        {
            _carriageReturn = carriageReturn;
        }

        /// <summary>Single-byte LF framing (UTF-8, ASCII, Latin-1, ...).</summary>
        public LineFramer(int maxMessageLength)
            : this(new[] { (byte)'\n' }, new[] { (byte)'\r' }, maxMessageLength)
        {
        }

        protected override int Slack => _carriageReturn.Length;

        protected override int PayloadLength(ReadOnlySpan<byte> buffer, int terminatorStart)
        {
            int cr = terminatorStart - _carriageReturn.Length;
            return cr >= 0 && buffer.Slice(cr, _carriageReturn.Length).SequenceEqual(_carriageReturn) ? cr : terminatorStart;
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

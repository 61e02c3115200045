using System.Buffers;

namespace PSTcp
{
    /// <summary>Outcome of looking for the next line in a buffer.</summary>
    internal enum FrameResult { Line, NeedMoreData, LineTooLong }

    /// <summary>
    /// LF framing with a length limit: a line ends at LF, and one CR right before the LF is not
    /// part of it. Works on pipe buffers in place, so framing never copies.
    /// </summary>
    internal readonly struct LineFramer
    {
        public LineFramer(int maxLineLength)
        {
            MaxLineLength = maxLineLength;
        }

        /// <summary>Longest line accepted, in bytes, terminator excluded.</summary>
        public int MaxLineLength { get; }

        /// <summary>
        /// Takes the next complete line off the front of <paramref name="buffer"/>.
        /// On <see cref="FrameResult.Line"/>, <paramref name="line"/> is the content without its
        /// terminator and <paramref name="buffer"/> starts after the LF.
        /// </summary>
        public FrameResult TryReadLine(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> line)
        {
            var lf = buffer.PositionOf((byte)'\n');
            if (lf == null)
            {
                line = default;
                // One byte of slack: a CR at the very end may yet be followed by the LF.
                return buffer.Length > (long)MaxLineLength + 1 ? FrameResult.LineTooLong : FrameResult.NeedMoreData;
            }

            line = buffer.Slice(0, lf.Value);
            if (!line.IsEmpty && EndsWithCarriageReturn(line))
            {
                line = line.Slice(0, line.Length - 1);
            }

            if (line.Length > MaxLineLength)
            {
                return FrameResult.LineTooLong;
            }

            buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
            return FrameResult.Line;
        }

        /// <summary>Whether what is left when the peer closes is within the limit.</summary>
        public bool FitsFinalFragment(in ReadOnlySequence<byte> fragment) => fragment.Length <= MaxLineLength;

        private static bool EndsWithCarriageReturn(in ReadOnlySequence<byte> line)
        {
            if (line.IsSingleSegment)
            {
                var span = line.First.Span;
                return span[span.Length - 1] == (byte)'\r';
            }

            return line.Slice(line.Length - 1).First.Span[0] == (byte)'\r';
        }
    }
}

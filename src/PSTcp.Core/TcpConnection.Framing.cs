using System;
using System.Buffers;

namespace PSTcp
{
    /// <summary>Line framing of the bytes a connection has read, into the batch of messages.</summary>
    public sealed partial class TcpConnection
    {
        /// <summary>Frames the complete lines at the front of <paramref name="rest"/> into the batch.</summary>
        private FrameResult FrameLines(ref ReadOnlySequence<byte> rest)
        {
            return rest.IsSingleSegment ? FrameSegment(ref rest) : FrameSequence(ref rest);
        }

        /// <summary>
        /// The common case, all buffered bytes in one segment: scan the span, copy the complete
        /// lines out in one block, and let the messages point into it.
        /// </summary>
        private FrameResult FrameSegment(ref ReadOnlySequence<byte> rest)
        {
            var span = rest.First.Span;
            int max = _framer.MaxLineLength;
            int start = 0;
            var result = FrameResult.NeedMoreData;
            while (true)
            {
                int lf = span.Slice(start).IndexOf((byte)'\n');
                if (lf < 0)
                {
                    if (span.Length - start > max + 1L) result = FrameResult.LineTooLong;
                    break;
                }

                int length = lf > 0 && span[start + lf - 1] == (byte)'\r' ? lf - 1 : lf;
                if (length > max)
                {
                    result = FrameResult.LineTooLong;
                    break;
                }

                // Offsets for now; the block is copied once the batch is known.
                if (_makeMessages) _lineOffsets.Add(((long)start << 32) | (uint)length);
                _batchLines++;
                start += lf + 1;
            }

            int count = _lineOffsets.Count;
            if (count > 0)
            {
                var block = span.Slice(0, start).ToArray();
                // Lines read together share one timestamp: the moment their read completed.
                long now = DateTime.UtcNow.Ticks;
                for (int i = 0; i < count; i++)
                {
                    long entry = _lineOffsets[i];
                    _batch.Add(new TcpMessage(block, (int)(entry >> 32), (int)(uint)entry, this, ++_sequence, now));
                }

                _lineOffsets.Clear();
            }

            rest = rest.Slice(start);
            return result;
        }

        private FrameResult FrameSequence(ref ReadOnlySequence<byte> rest)
        {
            long now = 0;
            while (true)
            {
                var frame = _framer.TryReadLine(ref rest, out var line);
                if (frame != FrameResult.Line)
                {
                    return frame;
                }

                if (_batchLines++ == 0)
                {
                    now = DateTime.UtcNow.Ticks;
                }

                if (_makeMessages) _batch.Add(NewMessage(line, now));
            }
        }

        private TcpMessage NewMessage(in ReadOnlySequence<byte> line, long utcTicks)
        {
            var data = line.ToArray();
            return new TcpMessage(data, 0, data.Length, this, ++_sequence, utcTicks);
        }
    }
}

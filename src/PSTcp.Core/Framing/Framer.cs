using System;

namespace PSTcp.Framing
{
    /// <summary>How a byte stream is cut into messages (Get-Help about_PSTcp, "FRAMING AND CONVERSATIONS").</summary>
    public enum FramingKind
    {
        /// <summary>LF-terminated; one CR before the LF is not part of the message.</summary>
        Line,
        /// <summary>Each message ends with a delimiter; nothing else is stripped.</summary>
        Delimiter,
        /// <summary>An unsigned length prefix of 1, 2, 4 or 8 bytes, then that many bytes.</summary>
        LengthPrefix,
        /// <summary>Every message has the same length.</summary>
        FixedLength,
        /// <summary>Whatever one read delivered is one message.</summary>
        Raw,
        /// <summary>RFC 6587 octet counting: an ASCII decimal length, a space, then that many bytes.</summary>
        OctetCount,
        /// <summary>Netstrings: an ASCII decimal length, a colon, that many bytes, a comma.</summary>
        Netstring,
        /// <summary>A header block ended by an empty line, then a body of the length a header (Content-Length) names; the message is all of it.</summary>
        Headers,
        /// <summary>A start marker (optional), the message, an end marker: HL7 MLLP's 0x0B … 0x1C 0x0D.</summary>
        Marker,
    }

    /// <summary>How a length field is written.</summary>
    public enum PrefixEncoding
    {
        /// <summary>An unsigned integer of -PrefixSize bytes in -ByteOrder.</summary>
        Binary,
        /// <summary>Base-128, least significant group first, high bit set on all but the last byte (MQTT, protobuf).</summary>
        Varint,
    }

    /// <summary>Byte order of a length prefix.</summary>
    public enum ByteOrder { BigEndian, LittleEndian }

    /// <summary>Outcome of looking for the next frame at the front of the unconsumed bytes.</summary>
    public enum FrameStatus
    {
        /// <summary>A whole frame is there: see <see cref="Frame"/>.</summary>
        Frame,
        /// <summary>Not yet: read more (<see cref="Frame.FrameLength"/> may hint how much is needed in all).</summary>
        NeedMoreData,
        /// <summary>The frame (or its declared length) is over the limit: close the connection.</summary>
        TooLong,
        /// <summary>The bytes can't be a frame of this framing (a length that isn't a number, a missing trailer): close the connection; <see cref="Framer.InvalidReason"/> says why.</summary>
        Invalid,
    }

    /// <summary>Where a frame's payload lies in the buffer given to the framer.</summary>
    public readonly struct Frame
    {
        public Frame(int payloadOffset, int payloadLength, int frameLength)
        {
            PayloadOffset = payloadOffset;
            PayloadLength = payloadLength;
            FrameLength = frameLength;
        }

        /// <summary>Where the payload starts (after a length prefix, say).</summary>
        public int PayloadOffset { get; }

        /// <summary>The payload's length: the message's <c>Data</c>.</summary>
        public int PayloadLength { get; }

        /// <summary>The whole frame's length (prefix, payload, terminator): what the echo writes back and what to consume.</summary>
        public int FrameLength { get; }
    }

    /// <summary>
    /// One connection's receive-side framing: finds frames at the front of the bytes read and not
    /// yet consumed. A framer may keep state between calls (how far it already searched) as
    /// long as the caller keeps to the contract: every call gets the unconsumed bytes from the
    /// same start, grown by what was read since, until a frame is returned; the caller then
    /// consumes exactly <see cref="Frame.FrameLength"/> bytes before calling again.
    /// </summary>
    public abstract class Framer
    {
        protected Framer(int maxMessageLength)
        {
            if (maxMessageLength < 1) throw new ArgumentOutOfRangeException(nameof(maxMessageLength));
            MaxMessageLength = maxMessageLength;
        }

        /// <summary>Longest payload accepted, in bytes.</summary>
        public int MaxMessageLength { get; }

        /// <summary>Looks for the next complete frame at the front of <paramref name="buffer"/>.</summary>
        public abstract FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out Frame frame);

        /// <summary>
        /// The peer closed with <paramref name="rest"/> unframed (never empty): whether it is a
        /// message of its own (Line and Delimiter: a final fragment is delivered). The default
        /// drops it: an incomplete length-prefixed or fixed-length frame means nothing.
        /// </summary>
        public virtual FrameStatus TryReadFinal(ReadOnlySpan<byte> rest, out Frame frame)
        {
            frame = default;
            return FrameStatus.NeedMoreData;
        }

        /// <summary>
        /// Frames up to <paramref name="limit"/> whole frames from the front of
        /// <paramref name="buffer"/>: each one's offsets, counted from the buffer's start, go to
        /// <paramref name="frames"/> (when it is empty they are only counted). Returns
        /// <see cref="FrameStatus.Frame"/> when it stopped at the limit with bytes left,
        /// <see cref="FrameStatus.NeedMoreData"/> when what is left (maybe nothing) is not a
        /// whole frame, <see cref="FrameStatus.TooLong"/> when the next frame is over the limit.
        /// </summary>
        /// <remarks>
        /// One call per read batch, so a busy connection pays the per-frame cost in a tight
        /// loop here, not in its async receive loop; framers override it where they can do better.
        /// </remarks>
        internal virtual FrameStatus ReadFrames(ReadOnlySpan<byte> buffer, Span<Frame> frames, int limit, out int count, out int consumed)
        {
            count = 0;
            consumed = 0;
            bool record = !frames.IsEmpty;
            while (consumed < buffer.Length)
            {
                if (count == limit) return FrameStatus.Frame;
                var status = TryReadFrame(buffer.Slice(consumed), out var frame);
                if (status != FrameStatus.Frame) return status;
                if (record) frames[count] = new Frame(consumed + frame.PayloadOffset, frame.PayloadLength, frame.FrameLength);
                count++;
                consumed += frame.FrameLength;
            }

            return FrameStatus.NeedMoreData;
        }

        /// <summary>Forgets any search state: the caller is starting from an empty buffer.</summary>
        public virtual void Reset() { }

        /// <summary>Why the last <see cref="FrameStatus.Invalid"/> was returned.</summary>
        public string InvalidReason { get; protected set; }

        /// <summary>
        /// Bytes at the front of every frame that belong to its payload though a length field
        /// follows them (LengthPrefix with -PrefixOffset). Such a frame's <see cref="Frame.PayloadOffset"/>
        /// is where the payload starts once <see cref="Compact"/> has moved those bytes up to the
        /// rest, over the length field; 0 for framings whose payload lies in one piece.
        /// </summary>
        public virtual int KeptHeaderLength => 0;

        /// <summary>
        /// Makes the payload of the frame at the front of <paramref name="frameBytes"/> one piece
        /// (see <see cref="KeptHeaderLength"/>): moves the kept header up to the payload, over the
        /// length field. <paramref name="frame"/>'s offsets count from the frame's start.
        /// </summary>
        public void Compact(Span<byte> frameBytes, in Frame frame)
        {
            int kept = KeptHeaderLength;
            int gap = frame.PayloadOffset;
            if (kept == 0 || gap == 0) return;
            frameBytes.Slice(0, kept).CopyTo(frameBytes.Slice(gap, kept));
        }

        /// <summary>
        /// Compacts <paramref name="count"/> frames that follow each other from the start of
        /// <paramref name="batch"/> (their offsets count from its start): see <see cref="Compact"/>.
        /// </summary>
        public void CompactBatch(Span<byte> batch, ReadOnlySpan<Frame> frames, int count)
        {
            if (KeptHeaderLength == 0) return;
            int start = 0;
            for (int i = 0; i < count; i++)
            {
                var f = frames[i];
                Compact(batch.Slice(start, f.FrameLength), new Frame(f.PayloadOffset - start, f.PayloadLength, f.FrameLength));
                start += f.FrameLength;
            }
        }
    }
}

using System;
using System.Buffers;
using System.Text;

namespace PSTcp.Framing
{
    /// <summary>
    /// A source's framing settings, checked once: makes each connection's receive-side
    /// <see cref="Framer"/> and frames outgoing messages the same way.
    /// </summary>
    public sealed class MessageFraming
    {
        private readonly byte[] _terminator;
        private readonly byte[] _carriageReturn;
        private readonly int _alignment;

        private MessageFraming(FramingKind kind, Encoding encoding, int maxMessageLength, byte[] terminator, byte[] carriageReturn,
            int alignment, int prefixSize, ByteOrder byteOrder, int messageLength)
        {
            Kind = kind;
            Encoding = encoding;
            MaxMessageLength = maxMessageLength;
            _terminator = terminator;
            _carriageReturn = carriageReturn;
            _alignment = alignment;
            PrefixSize = prefixSize;
            ByteOrder = byteOrder;
            MessageLength = messageLength;
        }

        public FramingKind Kind { get; }

        public Encoding Encoding { get; }

        public int MaxMessageLength { get; }

        public int PrefixSize { get; }

        public ByteOrder ByteOrder { get; }

        public int MessageLength { get; }

        /// <summary>LengthPrefix: bytes before the length field, kept in the message.</summary>
        public int PrefixOffset { get; private set; }

        /// <summary>LengthPrefix: added to the field's value to give the bytes after it.</summary>
        public int LengthAdjustment { get; private set; }

        /// <summary>LengthPrefix: binary or varint.</summary>
        public PrefixEncoding PrefixEncoding { get; private set; }

        /// <summary>Headers: the header naming the body's length.</summary>
        public string LengthHeader { get; private set; }

        /// <summary>Marker: the start marker (maybe empty).</summary>
        public ReadOnlyMemory<byte> StartMarker { get; private set; }

        /// <summary>Marker: the end marker.</summary>
        public ReadOnlyMemory<byte> EndMarker { get; private set; }

        /// <summary>The most bytes framing adds to a message (prefix, terminator, markers), the line terminator excluded.</summary>
        internal int MaxOverhead
        {
            get
            {
                switch (Kind)
                {
                    case FramingKind.LengthPrefix: return PrefixEncoding == PrefixEncoding.Varint ? LengthPrefixFramer.MaxVarintSize : PrefixSize;
                    case FramingKind.OctetCount:
                    case FramingKind.Netstring: return 12;
                    case FramingKind.Marker: return StartMarker.Length + EndMarker.Length;
                    default: return _terminator?.Length ?? 0;
                }
            }
        }

        /// <summary>Line: LF as encoded; Delimiter: the delimiter; otherwise null.</summary>
        public ReadOnlyMemory<byte> Terminator => _terminator;

        /// <summary>Line framing with LF in UTF-8: the case the receive path has a fast lane for.</summary>
        internal bool IsSingleByteLine => Kind == FramingKind.Line && _terminator.Length == 1 && _terminator[0] == (byte)'\n';

        /// <summary>Checks the settings; an invalid combination is an <see cref="ArgumentException"/> naming the parameter.</summary>
        public static MessageFraming FromOptions(ConnectionOptions options)
        {
            var encoding = options.Encoding ?? ConnectionOptions.DefaultEncoding;
            int max = options.MaxLineLength;
            switch (options.Framing)
            {
                case FramingKind.Line:
                {
                    var lf = EncodeTerminator(encoding, "\n", "Encoding");
                    var cr = encoding.GetBytes("\r");
                    return new MessageFraming(FramingKind.Line, encoding, max, lf, cr.Length == lf.Length ? cr : Array.Empty<byte>(), lf.Length, 0, default, 0);
                }

                case FramingKind.Delimiter:
                {
                    byte[] delimiter;
                    int alignment = 1;
                    if (options.Delimiter != null && options.Delimiter.Length > 0)
                    {
                        delimiter = (byte[])options.Delimiter.Clone();
                    }
                    else if (!string.IsNullOrEmpty(options.DelimiterText))
                    {
                        // A text delimiter is matched as the encoding writes it, on its code units.
                        delimiter = EncodeTerminator(encoding, options.DelimiterText, "Delimiter");
                        alignment = CodeUnitSize(encoding);
                    }
                    else
                    {
                        throw new ArgumentException("Delimiter framing needs a non-empty -Delimiter.", "Delimiter");
                    }

                    return new MessageFraming(FramingKind.Delimiter, encoding, max, delimiter, null, alignment, 0, default, 0);
                }

                case FramingKind.LengthPrefix:
                {
                    bool varint = options.PrefixEncoding == PrefixEncoding.Varint;
                    if (!varint && !LengthPrefixFramer.IsValidSize(options.PrefixSize))
                    {
                        throw new ArgumentException($"The prefix size must be 1, 2, 3, 4 or 8 bytes, not {options.PrefixSize}.", "PrefixSize");
                    }

                    if (options.PrefixOffset < 0 || options.PrefixOffset > max)
                    {
                        throw new ArgumentException($"-PrefixOffset must be from 0 to -MaxMessageLength ({max}), not {options.PrefixOffset}.", "PrefixOffset");
                    }

                    return new MessageFraming(FramingKind.LengthPrefix, encoding, max, null, null, 1, varint ? 0 : options.PrefixSize, options.ByteOrder, 0)
                    {
                        PrefixOffset = options.PrefixOffset,
                        LengthAdjustment = options.LengthAdjustment,
                        PrefixEncoding = options.PrefixEncoding,
                    };
                }

                case FramingKind.OctetCount:
                case FramingKind.Netstring:
                    return new MessageFraming(options.Framing, encoding, max, null, null, 1, 0, default, 0);

                case FramingKind.Headers:
                    if (string.IsNullOrWhiteSpace(options.LengthHeader) || options.LengthHeader.Trim().IndexOfAny(new[] { ':', ' ', '\t', '\r', '\n' }) >= 0)
                    {
                        throw new ArgumentException($"-LengthHeader must be a header name, not '{options.LengthHeader}'.", "LengthHeader");
                    }

                    return new MessageFraming(FramingKind.Headers, encoding, max, null, null, 1, 0, default, 0) { LengthHeader = options.LengthHeader.Trim() };

                case FramingKind.Marker:
                    if (options.EndMarker == null || options.EndMarker.Length == 0)
                    {
                        throw new ArgumentException("Marker framing needs a non-empty -EndMarker.", "EndMarker");
                    }

                    return new MessageFraming(FramingKind.Marker, encoding, max, null, null, 1, 0, default, 0)
                    {
                        StartMarker = (byte[])(options.StartMarker ?? Array.Empty<byte>()).Clone(),
                        EndMarker = (byte[])options.EndMarker.Clone(),
                    };

                case FramingKind.FixedLength:
                    if (options.MessageLength < 1)
                    {
                        throw new ArgumentException("FixedLength framing needs -MessageLength of at least 1.", "MessageLength");
                    }

                    if (options.MessageLength > max)
                    {
                        throw new ArgumentException($"-MessageLength ({options.MessageLength}) is over -MaxMessageLength ({max}).", "MessageLength");
                    }

                    return new MessageFraming(FramingKind.FixedLength, encoding, max, null, null, 1, 0, default, options.MessageLength);

                case FramingKind.Raw:
                    return new MessageFraming(FramingKind.Raw, encoding, max, null, null, 1, 0, default, 0);

                default:
                    throw new ArgumentException($"Unknown framing '{options.Framing}'.", "Framing");
            }
        }

        /// <summary>A new receive-side framer for one connection.</summary>
        public Framer CreateFramer()
        {
            switch (Kind)
            {
                case FramingKind.Line: return new LineFramer(_terminator, _carriageReturn, MaxMessageLength);
                case FramingKind.Delimiter: return new DelimiterFramer(_terminator, _alignment, MaxMessageLength);
                case FramingKind.LengthPrefix: return new LengthPrefixFramer(PrefixSize, ByteOrder, MaxMessageLength, PrefixOffset, LengthAdjustment, PrefixEncoding);
                case FramingKind.FixedLength: return new FixedLengthFramer(MessageLength, MaxMessageLength);
                case FramingKind.OctetCount: return new DecimalLengthFramer(netstring: false, MaxMessageLength);
                case FramingKind.Netstring: return new DecimalLengthFramer(netstring: true, MaxMessageLength);
                case FramingKind.Headers: return new HeadersFramer(LengthHeader, MaxMessageLength);
                case FramingKind.Marker: return new MarkerFramer(StartMarker.ToArray(), EndMarker.ToArray(), MaxMessageLength);
                default: return new RawFramer(MaxMessageLength);
            }
        }

        /// <summary>
        /// Writes one message framed: Line adds <paramref name="lineTerminator"/> (default LF as
        /// encoded), Delimiter the delimiter, LengthPrefix the prefix first; FixedLength checks
        /// the length; Raw writes the payload as is.
        /// </summary>
        /// <exception cref="ArgumentException">The payload can't be framed (wrong fixed length, too long for the prefix).</exception>
        public void WriteFrame(ReadOnlySpan<byte> payload, IBufferWriter<byte> output, ReadOnlySpan<byte> lineTerminator = default)
        {
            switch (Kind)
            {
                case FramingKind.Line:
                    Write(output, payload);
                    Write(output, lineTerminator.IsEmpty ? _terminator : lineTerminator);
                    break;
                case FramingKind.Delimiter:
                    Write(output, payload);
                    Write(output, _terminator);
                    break;
                case FramingKind.LengthPrefix:
                    WriteLengthPrefixed(payload, output);
                    break;
                case FramingKind.OctetCount:
                case FramingKind.Netstring:
                {
                    Write(output, Encoding.ASCII.GetBytes(payload.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    Write(output, Kind == FramingKind.Netstring ? Colon : Space);
                    Write(output, payload);
                    if (Kind == FramingKind.Netstring) Write(output, Comma);
                    break;
                }

                case FramingKind.Headers:
                {
                    // The message is whole already: check it is exactly one (a wrong Content-Length
                    // would desynchronize the peer), then send it as is.
                    var framer = CreateFramer();
                    var status = framer.TryReadFrame(payload, out var frame);
                    if (status != FrameStatus.Frame || frame.FrameLength != payload.Length || frame.PayloadOffset != 0)
                    {
                        string why = status == FrameStatus.Invalid ? framer.InvalidReason
                            : status == FrameStatus.TooLong ? $"it is longer than -MaxMessageLength ({MaxMessageLength:N0})"
                            : status == FrameStatus.NeedMoreData ? $"its header block doesn't end with an empty line, or its body is shorter than its {LengthHeader} header says"
                            : $"its body is longer than its {LengthHeader} header says";
                        throw new ArgumentException($"A message of {payload.Length} bytes can't be sent with Headers framing: {why}.");
                    }

                    Write(output, payload);
                    break;
                }

                case FramingKind.Marker:
                    Write(output, StartMarker.Span);
                    Write(output, payload);
                    Write(output, EndMarker.Span);
                    break;
                case FramingKind.FixedLength:
                    if (payload.Length != MessageLength)
                    {
                        throw new ArgumentException($"A message of {payload.Length} bytes can't be sent with FixedLength framing of {MessageLength} bytes.");
                    }

                    Write(output, payload);
                    break;
                default:
                    Write(output, payload);
                    break;
            }
        }

        private static readonly byte[] Colon = { (byte)':' };
        private static readonly byte[] Space = { (byte)' ' };
        private static readonly byte[] Comma = { (byte)',' };

        /// <summary>LengthPrefix: the message's first PrefixOffset bytes, the length field, the rest.</summary>
        private void WriteLengthPrefixed(ReadOnlySpan<byte> payload, IBufferWriter<byte> output)
        {
            if (payload.Length < PrefixOffset)
            {
                throw new ArgumentException($"A message of {payload.Length} bytes is shorter than -PrefixOffset ({PrefixOffset}): it has no room for the header before the length field.");
            }

            long value = (long)(payload.Length - PrefixOffset) - LengthAdjustment;
            if (value < 0)
            {
                throw new ArgumentException($"A message of {payload.Length} bytes can't be sent with -LengthAdjustment {LengthAdjustment}: its length field would be {value}.");
            }

            Write(output, payload.Slice(0, PrefixOffset));
            if (PrefixEncoding == PrefixEncoding.Varint)
            {
                var field = output.GetSpan(LengthPrefixFramer.MaxVarintSize);
                output.Advance(LengthPrefixFramer.WriteVarint(field, (ulong)value));
            }
            else
            {
                if (PrefixSize < 8 && (ulong)value >= 1UL << (8 * PrefixSize))
                {
                    throw new ArgumentException($"A message of {payload.Length} bytes doesn't fit a {PrefixSize}-byte length prefix.");
                }

                var prefix = output.GetSpan(PrefixSize).Slice(0, PrefixSize);
                LengthPrefixFramer.WriteLength(prefix, (ulong)value, ByteOrder == ByteOrder.BigEndian);
                output.Advance(PrefixSize);
            }

            Write(output, payload.Slice(PrefixOffset));
        }

        private static void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var span = output.GetSpan(1);
                int n = Math.Min(span.Length, bytes.Length);
                bytes.Slice(0, n).CopyTo(span);
                output.Advance(n);
                bytes = bytes.Slice(n);
            }
        }

        /// <summary>How many bytes one code unit takes: 2 for UTF-16, 4 for UTF-32, else 1.</summary>
        private static int CodeUnitSize(Encoding encoding) => encoding.GetByteCount("\n");

        private static byte[] EncodeTerminator(Encoding encoding, string text, string parameter)
        {
            // An encoding frames when LF is one whole code unit that decodes back to itself.
            var lf = encoding.GetBytes("\n");
            if ((lf.Length != 1 && lf.Length != 2 && lf.Length != 4) || encoding.GetString(lf) != "\n")
            {
                throw new ArgumentException($"The encoding '{encoding.WebName}' can't be framed: LF is not one code unit in it.", "Encoding");
            }

            var bytes = encoding.GetBytes(text);
            if (bytes.Length == 0 || encoding.GetString(bytes) != text)
            {
                throw new ArgumentException($"'{text}' can't be written in the encoding '{encoding.WebName}'.", parameter);
            }

            return bytes;
        }

        public override string ToString() => Kind.ToString();

        /// <summary>Why a frame was refused, for the LineTooLong error that closes the connection.</summary>
        internal static string Describe(FrameStatus status, Framer framer, int max) =>
            status == FrameStatus.Invalid ? $"a malformed frame ({framer.InvalidReason})" : $"a message longer than {max:N0} bytes";
    }
}

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
                    if (options.PrefixSize != 1 && options.PrefixSize != 2 && options.PrefixSize != 4 && options.PrefixSize != 8)
                    {
                        throw new ArgumentException($"The prefix size must be 1, 2, 4 or 8 bytes, not {options.PrefixSize}.", "PrefixSize");
                    }

                    return new MessageFraming(FramingKind.LengthPrefix, encoding, max, null, null, 1, options.PrefixSize, options.ByteOrder, 0);

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
                case FramingKind.LengthPrefix: return new LengthPrefixFramer(PrefixSize, ByteOrder, MaxMessageLength);
                case FramingKind.FixedLength: return new FixedLengthFramer(MessageLength, MaxMessageLength);
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
                {
                    if (PrefixSize < 8 && (ulong)payload.Length >= 1UL << (8 * PrefixSize))
                    {
                        throw new ArgumentException($"A message of {payload.Length} bytes doesn't fit a {PrefixSize}-byte length prefix.");
                    }

                    var prefix = output.GetSpan(PrefixSize).Slice(0, PrefixSize);
                    LengthPrefixFramer.WriteLength(prefix, (ulong)payload.Length, ByteOrder == ByteOrder.BigEndian);
                    output.Advance(PrefixSize);
                    Write(output, payload);
                    break;
                }

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
    }
}

using System.Management.Automation;
using PSTcp.Framing;

namespace PSTcp.Commands
{
    /// <summary>
    /// The framing parameters (-Framing in the cmdlets' help) of every cmdlet that opens a
    /// server or a connection, declared once, and how they become options.
    /// </summary>
    public abstract class FramingCmdlet : TcpCmdlet
    {
        /// <summary>How the byte stream is cut into messages.</summary>
        [Parameter]
        public FramingKind Framing { get; set; } = FramingKind.Line;

        /// <summary>Delimiter framing: a string (matched as the encoding writes it) or a byte[] (matched as is).</summary>
        [Parameter]
        [DelimiterTransformation]
        [ValidateNotNull]
        public object Delimiter { get; set; }

        /// <summary>LengthPrefix framing: 1, 2, 3, 4 or 8 bytes.</summary>
        [Parameter]
        [ArgumentCompleter(typeof(PrefixSizeCompleter))]
        public int PrefixSize { get; set; } = 4;

        /// <summary>LengthPrefix framing: the prefix's byte order.</summary>
        [Parameter]
        public ByteOrder ByteOrder { get; set; } = ByteOrder.BigEndian;

        /// <summary>FixedLength framing: every message's length in bytes.</summary>
        [Parameter]
        public int MessageLength { get; set; }

        /// <summary>LengthPrefix framing: bytes before the length field; they stay in Data, the field doesn't.</summary>
        [Parameter]
        [ValidateRange(0, 1024 * 1024 * 1024)]
        public int PrefixOffset { get; set; }

        /// <summary>LengthPrefix framing: added to the length field's value to give the bytes after the field (-4 when the length counts itself).</summary>
        [Parameter]
        public int LengthAdjustment { get; set; }

        /// <summary>LengthPrefix framing: Binary (-PrefixSize bytes in -ByteOrder) or Varint (MQTT's and protobuf's base-128).</summary>
        [Parameter]
        public PrefixEncoding PrefixEncoding { get; set; } = PrefixEncoding.Binary;

        /// <summary>Headers framing: the header that names the body's length (default Content-Length).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string LengthHeader { get; set; } = "Content-Length";

        /// <summary>Marker framing: the bytes (byte[]) or text each message starts with.</summary>
        [Parameter]
        [DelimiterTransformation]
        [ValidateNotNull]
        public object StartMarker { get; set; }

        /// <summary>Marker framing: the bytes (byte[]) or text each message ends with.</summary>
        [Parameter]
        [DelimiterTransformation]
        [ValidateNotNull]
        public object EndMarker { get; set; }

        /// <summary>Longest message accepted, in bytes; a longer one (or a longer declared length) closes the connection.</summary>
        [Parameter]
        [Alias("MaxMessageLength")]
        [ValidateRange(1, 1024 * 1024 * 1024)]
        public int MaxLineLength { get; set; } = ConnectionOptions.DefaultMaxLineLength;

        /// <summary>The framing when neither -Framing nor -Delimiter is given (Line; Enter-TcpSession -Hex: Raw).</summary>
        protected virtual FramingKind DefaultFraming => FramingKind.Line;

        /// <summary>Whether any framing parameter was given (a cmdlet working on an existing connection refuses them).</summary>
        internal bool HasFramingParameters
        {
            get
            {
                var bound = MyInvocation.BoundParameters;
                return bound.ContainsKey(nameof(Framing)) || bound.ContainsKey(nameof(Delimiter)) || bound.ContainsKey(nameof(PrefixSize))
                    || bound.ContainsKey(nameof(ByteOrder)) || bound.ContainsKey(nameof(MessageLength)) || bound.ContainsKey(nameof(MaxLineLength))
                    || bound.ContainsKey(nameof(PrefixOffset)) || bound.ContainsKey(nameof(LengthAdjustment)) || bound.ContainsKey(nameof(PrefixEncoding))
                    || bound.ContainsKey(nameof(LengthHeader)) || bound.ContainsKey(nameof(StartMarker)) || bound.ContainsKey(nameof(EndMarker));
            }
        }

        /// <summary>
        /// Puts the framing parameters into <paramref name="options"/> (whose Encoding is set) and
        /// checks them now, so a bad combination fails before anything is bound or connected.
        /// </summary>
        protected MessageFraming ApplyFraming(ConnectionOptions options)
        {
            var bound = MyInvocation.BoundParameters;
            // -Delimiter alone implies Delimiter framing.
            var framing = bound.ContainsKey(nameof(Framing)) ? Framing : Delimiter != null ? FramingKind.Delimiter : DefaultFraming;
            RequireFraming(framing, nameof(Delimiter), Delimiter != null, FramingKind.Delimiter);
            RequireFraming(framing, nameof(PrefixSize), bound.ContainsKey(nameof(PrefixSize)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(ByteOrder), bound.ContainsKey(nameof(ByteOrder)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(MessageLength), bound.ContainsKey(nameof(MessageLength)), FramingKind.FixedLength);
            RequireFraming(framing, nameof(PrefixOffset), bound.ContainsKey(nameof(PrefixOffset)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(LengthAdjustment), bound.ContainsKey(nameof(LengthAdjustment)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(PrefixEncoding), bound.ContainsKey(nameof(PrefixEncoding)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(LengthHeader), bound.ContainsKey(nameof(LengthHeader)), FramingKind.Headers);
            RequireFraming(framing, nameof(StartMarker), StartMarker != null, FramingKind.Marker);
            RequireFraming(framing, nameof(EndMarker), EndMarker != null, FramingKind.Marker);
            if (PrefixEncoding == PrefixEncoding.Varint && (bound.ContainsKey(nameof(PrefixSize)) || bound.ContainsKey(nameof(ByteOrder))))
            {
                ThrowTcpError(new System.ArgumentException(
                    "-PrefixSize and -ByteOrder apply to -PrefixEncoding Binary only: a varint's length is in its bytes, least significant group first.",
                    bound.ContainsKey(nameof(PrefixSize)) ? nameof(PrefixSize) : nameof(ByteOrder)), framing);
            }

            options.Framing = framing;
            options.MaxLineLength = MaxLineLength;
            options.Delimiter = Delimiter as byte[];
            options.DelimiterText = Delimiter as string;
            options.PrefixSize = PrefixSize;
            options.ByteOrder = ByteOrder;
            options.MessageLength = MessageLength;
            options.PrefixOffset = PrefixOffset;
            options.LengthAdjustment = LengthAdjustment;
            options.PrefixEncoding = PrefixEncoding;
            options.LengthHeader = LengthHeader;
            try
            {
                options.StartMarker = MarkerBytes(StartMarker, options.Encoding, nameof(StartMarker));
                options.EndMarker = MarkerBytes(EndMarker, options.Encoding, nameof(EndMarker));
                return MessageFraming.FromOptions(options);
            }
            catch (System.ArgumentException e)
            {
                ThrowTcpError(e, framing);
                return null;
            }
        }

        /// <summary>A marker as bytes: byte[] as is, text as the encoding writes it.</summary>
        private static byte[] MarkerBytes(object marker, System.Text.Encoding encoding, string parameter)
        {
            switch (marker)
            {
                case null: return null;
                case byte[] bytes: return bytes;
                case string text when text.Length > 0: return encoding.GetBytes(text);
                default: throw new System.ArgumentException($"-{parameter} can't be empty.", parameter);
            }
        }

        private void RequireFraming(FramingKind framing, string parameter, bool given, FramingKind needed)
        {
            if (given && framing != needed)
            {
                ThrowTcpError(new System.ArgumentException(
                    $"-{parameter} applies to -Framing {needed} only, not to -Framing {framing}.", parameter), framing);
            }
        }
    }
}

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

        /// <summary>LengthPrefix framing: 1, 2, 4 or 8 bytes.</summary>
        [Parameter]
        public int PrefixSize { get; set; } = 4;

        /// <summary>LengthPrefix framing: the prefix's byte order.</summary>
        [Parameter]
        public ByteOrder ByteOrder { get; set; } = ByteOrder.BigEndian;

        /// <summary>FixedLength framing: every message's length in bytes.</summary>
        [Parameter]
        public int MessageLength { get; set; }

        /// <summary>Longest message accepted, in bytes; a longer one (or a longer declared length) closes the connection.</summary>
        [Parameter]
        [Alias("MaxMessageLength")]
        [ValidateRange(1, 1024 * 1024 * 1024)]
        public int MaxLineLength { get; set; } = ConnectionOptions.DefaultMaxLineLength;

        /// <summary>Whether any framing parameter was given (a cmdlet working on an existing connection refuses them).</summary>
        internal bool HasFramingParameters
        {
            get
            {
                var bound = MyInvocation.BoundParameters;
                return bound.ContainsKey(nameof(Framing)) || bound.ContainsKey(nameof(Delimiter)) || bound.ContainsKey(nameof(PrefixSize))
                    || bound.ContainsKey(nameof(ByteOrder)) || bound.ContainsKey(nameof(MessageLength)) || bound.ContainsKey(nameof(MaxLineLength));
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
            var framing = bound.ContainsKey(nameof(Framing)) ? Framing : Delimiter != null ? FramingKind.Delimiter : FramingKind.Line;
            RequireFraming(framing, nameof(Delimiter), Delimiter != null, FramingKind.Delimiter);
            RequireFraming(framing, nameof(PrefixSize), bound.ContainsKey(nameof(PrefixSize)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(ByteOrder), bound.ContainsKey(nameof(ByteOrder)), FramingKind.LengthPrefix);
            RequireFraming(framing, nameof(MessageLength), bound.ContainsKey(nameof(MessageLength)), FramingKind.FixedLength);

            options.Framing = framing;
            options.MaxLineLength = MaxLineLength;
            options.Delimiter = Delimiter as byte[];
            options.DelimiterText = Delimiter as string;
            options.PrefixSize = PrefixSize;
            options.ByteOrder = ByteOrder;
            options.MessageLength = MessageLength;
            try
            {
                return MessageFraming.FromOptions(options);
            }
            catch (System.ArgumentException e)
            {
                ThrowTcpError(e, framing);
                return null;
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

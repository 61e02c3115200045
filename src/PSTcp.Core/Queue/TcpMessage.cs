using System;
using System.Net;

namespace PSTcp
{
    /// <summary>One line received from a peer, without its terminator.</summary>
    /// <remarks>
    /// A busy server makes millions of these, so a message keeps only what is its own (its
    /// bytes, sequence and time) and takes the rest from its connection. It is made when a
    /// consumer takes it from the queue, not when it is read.
    /// </remarks>
    public sealed partial class TcpMessage
    {
        private readonly long _utcTicks;
        private readonly byte[] _data;
        private string _text;

        /// <summary>A message that owns <paramref name="data"/>.</summary>
        internal TcpMessage(byte[] data, TcpConnection connection, long sequence, long utcTicks)
        {
            _data = data;
            Origin = connection;
            Sequence = sequence;
            _utcTicks = utcTicks;
        }

        /// <summary>A message of <paramref name="block"/>[offset..+length], with its own copy of those bytes (blocks are shared and pooled).</summary>
        internal TcpMessage(byte[] block, int offset, int length, TcpConnection connection, long sequence, long utcTicks)
            : this(Slice(block, offset, length), connection, sequence, utcTicks)
        {
        }

        private static byte[] Slice(byte[] block, int offset, int length)
        {
            var data = new byte[length];
            Buffer.BlockCopy(block, offset, data, 0, length);
            return data;
        }

        /// <summary>When the full line was read (local time).</summary>
        public DateTimeOffset Timestamp => new DateTimeOffset(_utcTicks, TimeSpan.Zero).ToLocalTime();

        /// <summary>The line decoded with the source's encoding; invalid bytes become U+FFFD.</summary>
        // Decoded on first use: most messages of a busy echo server are never looked at.
        public string Text => _text ?? (_text = Origin.Encoding.GetString(_data));

        /// <summary>The line's exact bytes without the terminator.</summary>
        public byte[] Data => _data;

        /// <summary>Length of the line in bytes, terminator excluded.</summary>
        public int Length => _data.Length;

        public int ConnectionId => Origin.Id;

        /// <summary>The connection's id; on a relay, the client connection's Id for both directions of that client's pair.</summary>
        public int ConversationId => Origin.ConversationId;

        public System.Net.EndPoint RemoteEndPoint => Origin.RemoteEndPoint;

        public System.Net.EndPoint LocalEndPoint => Origin.LocalEndPoint;

        /// <summary>Name of the server or client connection the line came from.</summary>
        public string Source => Origin.SourceName;

        /// <summary>Inbound, or on a relay which side sent it (ClientToTarget, TargetToClient).</summary>
        public MessageDirection Direction => Origin.Direction;

        /// <summary>
        /// Whether the message was longer than -MaxMessageLength and <see cref="Data"/> holds only
        /// its first bytes: a relay observes such a message so, and forwards it whole.
        /// </summary>
        public bool Truncated { get; internal set; }

        /// <summary>1, 2, 3 … per connection, in arrival order.</summary>
        public long Sequence { get; }

        /// <summary>The connection the line came from (its counters count this message's drop).</summary>
        internal TcpConnection Origin { get; }

        public override string ToString() => Text;
    }
}

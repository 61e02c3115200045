using System;
using System.Net;

namespace PSTcp
{
    /// <summary>One line received from a peer, without its terminator.</summary>
    /// <remarks>
    /// A busy server makes millions of these, so a message keeps only what is its own (its
    /// bytes, sequence and time) and takes the rest from its connection.
    /// </remarks>
    public sealed class TcpMessage
    {
        private readonly long _utcTicks;
        private string _text;
        private byte[] _data;

        // Lines read together share one block; a message copies out its own bytes only when asked.
        private byte[] _block;
        private readonly int _offset;
        private readonly int _length;

        internal TcpMessage(byte[] block, int offset, int length, TcpConnection connection, long sequence, long utcTicks)
        {
            _block = block;
            _offset = offset;
            _length = length;
            if (offset == 0 && length == block.Length)
            {
                _data = block;
                _block = null;
            }

            Origin = connection;
            Sequence = sequence;
            _utcTicks = utcTicks;
        }

        /// <summary>When the full line was read (local time).</summary>
        public DateTimeOffset Timestamp => new DateTimeOffset(_utcTicks, TimeSpan.Zero).ToLocalTime();

        /// <summary>The line decoded with the source's encoding; invalid bytes become U+FFFD.</summary>
        // Decoded on first use: most messages of a busy echo server are never looked at.
        public string Text => _text ?? (_text = _data != null
            ? Origin.Encoding.GetString(_data)
            : Origin.Encoding.GetString(_block, _offset, _length));

        /// <summary>The line's exact bytes without the terminator.</summary>
        public byte[] Data
        {
            get
            {
                if (_data == null)
                {
                    var data = new byte[_length];
                    Buffer.BlockCopy(_block, _offset, data, 0, _length);
                    _data = data;
                    // The block may hold many lines: let it go once this one has its own copy.
                    _block = null;
                }

                return _data;
            }
        }

        /// <summary>Length of the line in bytes, terminator excluded.</summary>
        public int Length => _length;

        public int ConnectionId => Origin.Id;

        public IPEndPoint RemoteEndPoint => Origin.RemoteEndPoint;

        public IPEndPoint LocalEndPoint => Origin.LocalEndPoint;

        /// <summary>Name of the server or client connection the line came from.</summary>
        public string Source => Origin.SourceName;

        /// <summary>Inbound, or on a relay which side sent it (ClientToTarget, TargetToClient).</summary>
        public MessageDirection Direction => Origin.Direction;

        /// <summary>1, 2, 3 … per connection, in arrival order.</summary>
        public long Sequence { get; }

        /// <summary>The connection the line came from (its counters count this message's drop).</summary>
        internal TcpConnection Origin { get; }

        /// <summary>This message as a queue entry again (a queue's single-message write).</summary>
        internal MessageQueue.Entry ToEntry() => new MessageQueue.Entry
        {
            Block = _data ?? _block,
            Offset = _data != null ? 0 : _offset,
            Length = _length,
            Origin = Origin,
            Sequence = Sequence,
            UtcTicks = _utcTicks,
        };

        public override string ToString() => Text;
    }
}

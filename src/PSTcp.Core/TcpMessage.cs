using System;
using System.Net;
using System.Text;

namespace PSTcp
{
    /// <summary>One line received from a peer, without its terminator.</summary>
    public sealed class TcpMessage
    {
        private readonly Encoding _encoding;
        private string _text;
        private byte[] _data;

        // Lines read together share one block; a message copies out its own bytes only when asked.
        private byte[] _block;
        private readonly int _offset;
        private readonly int _length;

        internal TcpMessage(byte[] block, int offset, int length, Encoding encoding, TcpConnection connection, long sequence, DateTimeOffset timestamp)
        {
            _block = block;
            _offset = offset;
            _length = length;
            if (offset == 0 && length == block.Length)
            {
                _data = block;
                _block = null;
            }

            _encoding = encoding;
            ConnectionId = connection.Id;
            RemoteEndPoint = connection.RemoteEndPoint;
            LocalEndPoint = connection.LocalEndPoint;
            Source = connection.SourceName;
            Origin = connection;
            Sequence = sequence;
            Timestamp = timestamp;
        }

        /// <summary>When the full line was read.</summary>
        public DateTimeOffset Timestamp { get; }

        /// <summary>The line decoded with the source's encoding; invalid bytes become U+FFFD.</summary>
        // Decoded on first use: most messages of a busy echo server are never looked at.
        public string Text => _text ?? (_text = _data != null ? _encoding.GetString(_data) : _encoding.GetString(_block, _offset, _length));

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

        public int ConnectionId { get; }

        public IPEndPoint RemoteEndPoint { get; }

        public IPEndPoint LocalEndPoint { get; }

        /// <summary>Name of the server or client connection the line came from.</summary>
        public string Source { get; }

        /// <summary>1, 2, 3 … per connection, in arrival order.</summary>
        public long Sequence { get; }

        /// <summary>The connection whose counters a drop of this message goes to.</summary>
        internal TcpConnection Origin { get; }

        public override string ToString() => Text;
    }
}

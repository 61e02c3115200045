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

        internal TcpMessage(byte[] data, Encoding encoding, TcpConnection connection, long sequence, DateTimeOffset timestamp)
        {
            Data = data;
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
        public string Text => _text ?? (_text = _encoding.GetString(Data));

        /// <summary>The line's exact bytes without the terminator.</summary>
        public byte[] Data { get; }

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

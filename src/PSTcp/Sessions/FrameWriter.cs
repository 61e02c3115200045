using System;
using System.Buffers;

namespace PSTcp.Commands
{
    // LineBuffer (Sending) is a fixed 64 KB with a flush per fill, for Send-TcpLine's streams; a
    // session's burst of typed lines is sent in one write of whatever size it has, hence this.
    /// <summary>A growable byte buffer for a burst of typed lines (MessageFraming.WriteFrame writes into it).</summary>
    internal sealed class FrameWriter : IBufferWriter<byte>
    {
        private byte[] _bytes = new byte[256];
        private int _length;

        public void Advance(int count) => _length += count;

        public Memory<byte> GetMemory(int sizeHint = 0) => new Memory<byte>(Room(sizeHint), _length, _bytes.Length - _length);

        public Span<byte> GetSpan(int sizeHint = 0) => new Span<byte>(Room(sizeHint), _length, _bytes.Length - _length);

        public ReadOnlyMemory<byte> Written => new ReadOnlyMemory<byte>(_bytes, 0, _length);

        private byte[] Room(int sizeHint)
        {
            int need = _length + Math.Max(sizeHint, 1);
            if (need > _bytes.Length) Array.Resize(ref _bytes, Math.Max(need, _bytes.Length * 2));
            return _bytes;
        }
    }
}

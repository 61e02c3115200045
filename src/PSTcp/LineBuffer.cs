using System;
using System.Buffers;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>Encodes lines into one pooled buffer until it is full: one send per batch, not per line.</summary>
    internal sealed class LineBuffer
    {
        private const int Size = 64 * 1024;
        private readonly Encoding _encoding;
        private readonly byte[] _newLine;
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(Size);
        private int _length;
        private int _lines;

        public LineBuffer(TcpConnection connection, Encoding encoding, string newLine)
        {
            Connection = connection;
            _encoding = encoding;
            _newLine = encoding.GetBytes(newLine);
        }

        public TcpConnection Connection { get; }

        public bool IsEmpty => _length == 0;

        /// <summary>Adds a line and its terminator; false when it doesn't fit and the buffer must be sent first.</summary>
        public bool Append(string line)
        {
            int max = _encoding.GetMaxByteCount(line.Length) + _newLine.Length;
            if (_length + max > _bytes.Length)
            {
                if (_length > 0)
                {
                    return false;
                }

                // A single line bigger than the buffer: grow to fit it.
                ArrayPool<byte>.Shared.Return(_bytes);
                _bytes = ArrayPool<byte>.Shared.Rent(max);
            }

            _length += _encoding.GetBytes(line, 0, line.Length, _bytes, _length);
            Buffer.BlockCopy(_newLine, 0, _bytes, _length, _newLine.Length);
            _length += _newLine.Length;
            _lines++;
            return true;
        }

        public (ReadOnlyMemory<byte> Data, int Lines) Take() => (new ReadOnlyMemory<byte>(_bytes, 0, _length), _lines);

        public void Reset()
        {
            _length = 0;
            _lines = 0;
            if (_bytes.Length > Size)
            {
                ArrayPool<byte>.Shared.Return(_bytes);
                _bytes = ArrayPool<byte>.Shared.Rent(Size);
            }
        }
    }
}

using System;
using System.Buffers;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Encodes lines into one pooled 64 KB buffer until it is full: one send per batch, not per
    /// line. A line longer than the buffer is encoded in pieces and sent as it goes, so a line
    /// of any length costs 64 KB, never an array of its encoded size (which overflows an int
    /// past ~700 million characters). Dispose returns the buffers to their pools.
    /// </summary>
    internal sealed class LineBuffer : IDisposable
    {
        private const int Size = 64 * 1024;

        // Characters encoded per piece of a long line: even UTF-32 (4 bytes each, plus one
        // character's worth held back by the encoder) fits the buffer twice.
        private const int Piece = 8 * 1024;

        private readonly Encoding _encoding;
        private readonly byte[] _newLine;
        private readonly int _maxPieceBytes;
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(Size);
        private char[] _chars;
        private Encoder _encoder;
        private int _length;
        private int _lines;

        public LineBuffer(TcpConnection connection, Encoding encoding, string newLine)
        {
            Connection = connection;
            _encoding = encoding;
            _newLine = encoding.GetBytes(newLine);
            _maxPieceBytes = encoding.GetMaxByteCount(Piece) + _newLine.Length;
        }

        public TcpConnection Connection { get; }

        public bool IsEmpty => _length == 0;

        /// <summary>
        /// Adds a line and its terminator, calling <paramref name="flush"/> (which sends
        /// <see cref="Take"/> and calls <see cref="Reset"/>) whenever the buffer is full. Returns
        /// false when a flush failed: the rest of that line is not encoded.
        /// </summary>
        public bool Append(string line, Func<bool> flush)
        {
            int max = line.Length <= Piece ? _encoding.GetMaxByteCount(line.Length) + _newLine.Length : int.MaxValue;
            if (max <= _bytes.Length)
            {
                if (_length + max > _bytes.Length && !flush()) return false;
                _length += _encoding.GetBytes(line, 0, line.Length, _bytes, _length);
            }
            else if (!AppendInPieces(line, flush))
            {
                return false;
            }

            if (_length + _newLine.Length > _bytes.Length && !flush()) return false;
            Buffer.BlockCopy(_newLine, 0, _bytes, _length, _newLine.Length);
            _length += _newLine.Length;
            _lines++;
            return true;
        }

        private bool AppendInPieces(string line, Func<bool> flush)
        {
            var chars = _chars ?? (_chars = ArrayPool<char>.Shared.Rent(Piece));
            var encoder = _encoder ?? (_encoder = _encoding.GetEncoder());
            encoder.Reset();
            int position = 0;
            while (position < line.Length)
            {
                if (_length + _maxPieceBytes > _bytes.Length && !flush()) return false;
                int count = Math.Min(Piece, line.Length - position);
                line.CopyTo(position, chars, 0, count);
                bool last = position + count == line.Length;
                // A surrogate pair split between pieces is held by the encoder until the next one.
                encoder.Convert(chars, 0, count, _bytes, _length, _bytes.Length - _length, last, out int used, out int written, out _);
                _length += written;
                position += used;
            }

            return true;
        }

        /// <summary>What to send: the encoded bytes and how many whole lines they end.</summary>
        public (ReadOnlyMemory<byte> Data, int Lines) Take() => (new ReadOnlyMemory<byte>(_bytes, 0, _length), _lines);

        public void Reset()
        {
            _length = 0;
            _lines = 0;
        }

        public void Dispose()
        {
            var bytes = _bytes;
            _bytes = Array.Empty<byte>();
            _length = 0;
            if (bytes.Length > 0) ArrayPool<byte>.Shared.Return(bytes);
            if (_chars != null)
            {
                ArrayPool<char>.Shared.Return(_chars);
                _chars = null;
            }
        }
    }
}

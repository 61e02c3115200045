using System;
using System.Buffers;
using System.Text;
using PSTcp.Framing;

namespace PSTcp.Commands
{
    /// <summary>
    /// Encodes lines (Send-TcpLine) or framed messages (Send-TcpMessage) into one pooled buffer
    /// until it is full: one send per batch, not per message. A line longer than the buffer is
    /// encoded in pieces and sent as it goes, so a line of any length costs 64 KB, never an
    /// array of its encoded size (which overflows an int past ~700 million characters).
    /// Dispose returns the buffers to their pools.
    /// </summary>
    internal sealed class LineBuffer : IBufferWriter<byte>, IDisposable
    {
        private const int Size = 64 * 1024;

        // Characters encoded per piece of a long line: even UTF-32 (4 bytes each, plus one
        // character's worth held back by the encoder) fits the buffer twice.
        private const int Piece = 8 * 1024;

        private readonly Encoding _encoding;
        private readonly byte[] _newLine;
        private readonly int _maxPieceBytes;
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(Size);
        private byte[] _scratch;
        private char[] _chars;
        private Encoder _encoder;
        private int _length;
        private int _lines;

        public LineBuffer(TcpConnection connection, Encoding encoding, string newLine)
        {
            Connection = connection;
            _encoding = encoding;
            _newLine = newLine == null ? Array.Empty<byte>() : encoding.GetBytes(newLine);
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

        /// <summary>
        /// Adds one message framed by <paramref name="framing"/> (null: unframed, as is); Line
        /// framing ends it with the buffer's new line (empty: LF as encoded). False when it
        /// doesn't fit and the buffer must be sent first.
        /// </summary>
        /// <exception cref="ArgumentException">The framing refuses the message (a wrong fixed length, say); nothing was added.</exception>
        public bool AppendFrame(ReadOnlySpan<byte> payload, MessageFraming framing)
        {
            // Room for the largest prefix or terminator that may come with it.
            int overhead = framing == null ? 0 : framing.MaxOverhead + _newLine.Length;
            if (!MakeRoom(payload.Length + overhead))
            {
                return false;
            }

            int start = _length;
            try
            {
                if (framing == null) Write(payload);
                else framing.WriteFrame(payload, this, _newLine);
            }
            catch (ArgumentException)
            {
                _length = start;
                throw;
            }

            _lines++;
            return true;
        }

        /// <summary>Like <see cref="AppendFrame(ReadOnlySpan{byte}, MessageFraming)"/> for text, encoded with the buffer's encoding.</summary>
        public bool AppendFrame(string text, MessageFraming framing)
        {
            int max = _encoding.GetMaxByteCount(text.Length);
            // Encoded once into a scratch buffer kept for the next message, so the framing
            // rules stay in MessageFraming and nothing is allocated per message.
            if (_scratch == null || _scratch.Length < max)
            {
                if (_scratch != null) ArrayPool<byte>.Shared.Return(_scratch);
                _scratch = ArrayPool<byte>.Shared.Rent(Math.Max(max, 256));
            }

            int n = _encoding.GetBytes(text, 0, text.Length, _scratch, 0);
            return AppendFrame(new ReadOnlySpan<byte>(_scratch, 0, n), framing);
        }

        private bool MakeRoom(int max)
        {
            if (_length + max <= _bytes.Length)
            {
                return true;
            }

            if (_length > 0)
            {
                return false;
            }

            // A single message bigger than the buffer: grow to fit it.
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = ArrayPool<byte>.Shared.Rent(max);
            return true;
        }

        private void Write(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(new Span<byte>(_bytes, _length, bytes.Length));
            _length += bytes.Length;
        }

        // IBufferWriter, for MessageFraming.WriteFrame: MakeRoom has made space for the whole frame.
        void IBufferWriter<byte>.Advance(int count) => _length += count;

        Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint) => new Memory<byte>(_bytes, _length, _bytes.Length - _length);

        Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint) => new Span<byte>(_bytes, _length, _bytes.Length - _length);

        public (ReadOnlyMemory<byte> Data, int Lines) Take() => (new ReadOnlyMemory<byte>(_bytes, 0, _length), _lines);

        /// <summary>
        /// Sends what is buffered on the cmdlet's thread (Ctrl+C ends the wait; a stall behind
        /// the connection's own full Wait-mode queue is warned about) and empties the buffer; a
        /// failure is written as a non-terminating error naming how many messages were lost,
        /// and returns false.
        /// </summary>
        public bool Send(TcpCmdlet cmdlet, string noun)
        {
            if (IsEmpty) return true;
            var (data, lines) = Take();
            try
            {
                var send = Connection.SendAsync(data, cmdlet.Cancellation);
                // Usually done already (the socket took it all): nothing to wait for.
                if (!send.IsCompletedSuccessfully) cmdlet.WaitForSend(send.AsTask(), Connection);
                Connection.CountMessagesSent(lines);
                return true;
            }
            catch (TcpException e)
            {
                cmdlet.WriteError(TcpErrors.From(new TcpException(e.Kind, $"{lines:N0} {noun}(s) could not be sent: {e.Message}", e), Connection));
                return false;
            }
            finally
            {
                Reset();
            }
        }

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

        public void Dispose()
        {
            var bytes = _bytes;
            _bytes = Array.Empty<byte>();
            _length = 0;
            if (bytes.Length > 0) ArrayPool<byte>.Shared.Return(bytes);
            if (_scratch != null)
            {
                ArrayPool<byte>.Shared.Return(_scratch);
                _scratch = null;
            }

            if (_chars != null)
            {
                ArrayPool<char>.Shared.Return(_chars);
                _chars = null;
            }
        }
    }
}

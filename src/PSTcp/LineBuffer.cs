using System;
using System.Buffers;
using System.Text;
using PSTcp.Framing;

namespace PSTcp.Commands
{
    /// <summary>
    /// Encodes lines (Send-TcpLine) or framed messages (Send-TcpMessage) into one pooled buffer
    /// until it is full: one send per batch, not per message.
    /// </summary>
    internal sealed class LineBuffer : IBufferWriter<byte>
    {
        private const int Size = 64 * 1024;
        private readonly Encoding _encoding;
        private readonly byte[] _newLine;
        private byte[] _bytes = ArrayPool<byte>.Shared.Rent(Size);
        private byte[] _scratch;
        private int _length;
        private int _lines;

        public LineBuffer(TcpConnection connection, Encoding encoding, string newLine)
        {
            Connection = connection;
            _encoding = encoding;
            _newLine = newLine == null ? Array.Empty<byte>() : encoding.GetBytes(newLine);
        }

        public TcpConnection Connection { get; }

        public bool IsEmpty => _length == 0;

        /// <summary>Adds a line and its terminator; false when it doesn't fit and the buffer must be sent first.</summary>
        public bool Append(string line)
        {
            int max = _encoding.GetMaxByteCount(line.Length) + _newLine.Length;
            if (!MakeRoom(max))
            {
                return false;
            }

            _length += _encoding.GetBytes(line, 0, line.Length, _bytes, _length);
            Buffer.BlockCopy(_newLine, 0, _bytes, _length, _newLine.Length);
            _length += _newLine.Length;
            _lines++;
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
            int overhead = framing == null ? 0 : 8 + framing.Terminator.Length + _newLine.Length;
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
        /// Sends what is buffered on the cmdlet's thread (Ctrl+C ends the wait) and empties the
        /// buffer; a failure is written as a non-terminating error naming how many messages were lost.
        /// </summary>
        public void Send(TcpCmdlet cmdlet, string noun)
        {
            if (IsEmpty) return;
            var (data, lines) = Take();
            try
            {
                cmdlet.WaitFor(Connection.SendAsync(data, cmdlet.StoppingToken).AsTask());
                Connection.CountMessagesSent(lines);
            }
            catch (TcpException e)
            {
                cmdlet.WriteError(TcpErrors.From(new TcpException(e.Kind, $"{lines} {noun}(s) could not be sent: {e.Message}", e), Connection));
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
    }
}

using System;
using System.Buffers;
using System.Collections.Generic;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Enter-TcpSession -Hex: a message's bytes as hexdump -C shows them (offset, 16 bytes in
    /// two groups of 8, the printable ASCII between bars), one string per 16 bytes.
    /// </summary>
    internal static class HexDump
    {
        public static IEnumerable<string> Lines(byte[] data)
        {
            if (data.Length == 0)
            {
                yield return "00000000  (empty message)";
                yield break;
            }

            var line = new StringBuilder(80);
            for (int offset = 0; offset < data.Length; offset += 16)
            {
                line.Clear();
                line.Append(offset.ToString("x8")).Append("  ");
                int count = Math.Min(16, data.Length - offset);
                for (int i = 0; i < 16; i++)
                {
                    if (i == 8) line.Append(' ');
                    if (i < count) line.Append(data[offset + i].ToString("x2")).Append(' ');
                    else line.Append("   ");
                }

                line.Append(" |");
                for (int i = 0; i < count; i++)
                {
                    byte b = data[offset + i];
                    line.Append(b >= 0x20 && b < 0x7f ? (char)b : '.');
                }

                yield return line.Append('|').ToString();
            }
        }
    }

    /// <summary>A growable byte buffer for framing one typed line (MessageFraming.WriteFrame writes into it).</summary>
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

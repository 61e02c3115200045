using System;
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
}

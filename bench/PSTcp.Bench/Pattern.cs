// What each client sends: a deterministic stream that checking an echo needs no parsing for.
using System;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Bench;

/// <summary>A client's deterministic stream of frames: a pattern of whole frames, stored twice
/// in a row so that any slice of up to one pattern length starting inside the first copy is
/// contiguous. A frame is a line (printable bytes, then '\n') or, with <see cref="LengthPrefix"/>,
/// a 4-byte big-endian payload length followed by a printable payload.</summary>
sealed class Pattern
{
    /// <summary>Set once from --frame before any pattern is built: every stream of a run uses
    /// the same framing.</summary>
    public static bool LengthPrefix;

    public readonly byte[] Data;   // two copies
    public readonly int Length;    // one copy, a multiple of LineSize
    public readonly int LineSize;

    public Pattern(int clientId, int lineSize, int minBytes)
    {
        LineSize = lineSize;
        int lines = Math.Max(1, (minBytes + lineSize - 1) / lineSize);
        Length = lines * lineSize;
        Data = new byte[Length * 2];
        int head = LengthPrefix ? 4 : 0;
        for (int j = 0; j < lines; j++)
        {
            Span<byte> frame = Data.AsSpan(j * lineSize, lineSize);
            Span<byte> line = frame.Slice(head);
            int content = LengthPrefix ? line.Length : line.Length - 1;
            for (int k = 0; k < content; k++)
                line[k] = (byte)('!' + (int)(((uint)clientId * 31u + (uint)j * 7u + (uint)k) % 90u)); // '!'..'z', never '\n'
            // "c<client> l<line> " up front when it fits, so a lost or repeated frame never aliases.
            if (content >= 24)
            {
                int p = 0;
                line[p++] = (byte)'c';
                Utf8Formatter.TryFormat(clientId, line.Slice(p), out int w); p += w;
                line[p++] = (byte)' ';
                line[p++] = (byte)'l';
                Utf8Formatter.TryFormat(j, line.Slice(p), out w); p += w;
                line[p++] = (byte)' ';
            }
            if (LengthPrefix) BinaryPrimitives.WriteInt32BigEndian(frame, line.Length);
            else line[content] = (byte)'\n';
        }
        Data.AsSpan(0, Length).CopyTo(Data.AsSpan(Length));
    }

    /// <summary>The expected bytes at a stream offset; count must be at most Length.</summary>
    public ReadOnlySpan<byte> At(long offset, int count) => Data.AsSpan((int)(offset % Length), count);
    public ReadOnlyMemory<byte> MemoryAt(long offset, int count) => Data.AsMemory((int)(offset % Length), count);
}

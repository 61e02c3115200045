// Errors and mismatches a run saw.
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

/// <summary>Errors seen by a run: counted, the first few kept as text.</summary>
sealed class ErrorLog
{
    public long Errors;
    public long Mismatches;
    public readonly List<string> First = new();

    public void Error(string what)
    {
        Interlocked.Increment(ref Errors);
        lock (First) { if (First.Count < 5) First.Add(what); }
    }

    public void Mismatch(string what)
    {
        Interlocked.Increment(ref Mismatches);
        lock (First) { if (First.Count < 5) First.Add(what); }
    }

    public bool Any => Interlocked.Read(ref Errors) + Interlocked.Read(ref Mismatches) > 0;
}

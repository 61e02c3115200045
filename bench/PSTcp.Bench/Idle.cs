// idle: memory per connection held open, before and after a push.
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

static partial class Program
{
    // ---------------------------------------------------------------- idle
    // Opens N connections that send nothing (memory per idle connection), then every one
    // pushes a few lines and reads their echo (memory per idle connection that has carried
    // data). Memory is the server's VmRSS, and with --phases whatever the caller answers
    // (the bench answers PSTcp's managed heap).
    static async Task Idle(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int count = o.Clients ?? 1000;
        int lineSize = o.LineSize ?? 64;
        int pushLines = o.PushLines;
        var mem = new MemoryProbe(o, result);
        await mem.Read("baseline", 0);

        var sockets = new Socket?[count];
        long start = Stopwatch.GetTimestamp();
        await ForEachConnection(count, async i =>
        {
            var s = NewSocket(ep);
            try { await s.ConnectAsync(ep).ConfigureAwait(false); sockets[i] = s; }
            catch (SocketException e) { log.Error($"idle: connection {i}: {e.SocketErrorCode}: {e.Message}"); s.Dispose(); }
        }, log, "idle: connections not all open within 60s");
        double openSeconds = (Stopwatch.GetTimestamp() - start) / TicksPerSecond;
        int open = 0;
        foreach (var s in sockets) if (s != null) open++;
        await Task.Delay(o.SettleMs);
        await mem.Read("idle", 0);
        var cpu = ServerStats.StartCpu(o.Pid); // the push only: per line echoed

        // The push: every connection sends its lines in one write and reads them back.
        long pushBytes = (long)pushLines * lineSize;
        await ForEachConnection(count, async i =>
        {
            var s = sockets[i];
            if (s == null) return;
            var pattern = new Pattern(i, lineSize, (int)pushBytes);
            byte[] buf = new byte[pushBytes];
            try
            {
                await SendAll(s, pattern.MemoryAt(0, (int)pushBytes)).ConfigureAwait(false);
                int got = 0;
                while (got < pushBytes)
                {
                    int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0) break;
                    got += n;
                }
                if (got < pushBytes) log.Error($"idle: connection {i} closed after {got} of {pushBytes} bytes");
                else if (!buf.AsSpan().SequenceEqual(pattern.At(0, (int)pushBytes))) log.Mismatch(Describe(buf, pattern.At(0, (int)pushBytes), 0, i));
            }
            catch (SocketException e) { log.Error($"idle: push on connection {i}: {e.SocketErrorCode}: {e.Message}"); }
        }, log, "idle: push not echoed within 60s");
        cpu.Stop();
        await Task.Delay(o.SettleMs);
        await mem.Read("pushed", (long)open * pushBytes);

        // Still open? A readable socket with nothing to read was closed by the server.
        int closedByServer = 0;
        foreach (var s in sockets)
        {
            if (s == null) continue;
            try { if (s.Poll(0, SelectMode.SelectRead) && s.Available == 0) closedByServer++; }
            catch (SocketException) { closedByServer++; }
        }
        foreach (var s in sockets) s?.Dispose();

        result["clients"] = count;
        result["line_size"] = lineSize;
        result["push_lines"] = pushLines;
        result["connections"] = open;
        result["open_seconds"] = openSeconds;
        result["closed_by_server"] = closedByServer;
        cpu.Report(result, (long)open * pushLines);
        mem.PerConnection("idle", "baseline", open, "idle");
        mem.PerConnection("pushed", "baseline", open, "pushed");
    }

    /// <summary>Runs one action per connection index, 32 at a time, bounded by a minute.</summary>
    static async Task ForEachConnection(int count, Func<int, Task> action, ErrorLog log, string timeoutMessage)
    {
        int next = -1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count) await action(i).ConfigureAwait(false);
        }
        var workers = new Task[Math.Min(count, 32)];
        for (int k = 0; k < workers.Length; k++) workers[k] = Task.Run(Worker);
        Task all = Task.WhenAll(workers);
        if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(60))) != all) log.Error(timeoutMessage);
    }
}

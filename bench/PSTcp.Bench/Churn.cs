// churn: connect, one line, its echo, close, as fast as possible.
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
    // ---------------------------------------------------------------- churn
    static async Task Churn(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int workers = o.Clients ?? 4;
        int lineSize = o.LineSize ?? 64;
        double seconds = o.Seconds ?? 5;
        long maxConnections = Math.Min(o.MaxOps, 2_000_000);
        long done = 0, claimed = 0;
        long start = Stopwatch.GetTimestamp();
        long end = start + (long)(seconds * TicksPerSecond);
        var pattern = new Pattern(0, lineSize, 64 << 10);
        var cpu = ServerStats.StartCpu(o.Pid);

        async Task Worker(int id)
        {
            byte[] buf = new byte[lineSize];
            while (Stopwatch.GetTimestamp() < end && Interlocked.Increment(ref claimed) <= maxConnections)
            {
                if (Interlocked.Read(ref log.Errors) > 100) return; // the server is failing: stop hammering it
                long offset = (Interlocked.Read(ref done) + id) * lineSize;
                ReadOnlyMemory<byte> line = pattern.MemoryAt(offset, lineSize);
                var s = NewSocket(ep);
                try
                {
                    await s.ConnectAsync(ep).ConfigureAwait(false);
                    await SendAll(s, line).ConfigureAwait(false);
                    int got = 0;
                    while (got < lineSize)
                    {
                        int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).ConfigureAwait(false);
                        if (n == 0) break;
                        got += n;
                    }
                    if (got < lineSize) { log.Error($"churn: connection closed after {got} of {lineSize} bytes"); continue; }
                    if (!buf.AsSpan().SequenceEqual(line.Span)) { log.Mismatch(Describe(buf, line.Span, 0, id)); continue; }
                    Interlocked.Increment(ref done);
                }
                catch (SocketException e)
                {
                    log.Error($"churn: {e.SocketErrorCode}: {e.Message}");
                }
                finally
                {
                    s.Dispose();
                }
            }
        }

        var tasks = new Task[workers];
        for (int i = 0; i < workers; i++) { int id = i; tasks[i] = Task.Run(() => Worker(id)); }
        Task workersDone = Task.WhenAll(tasks);
        if (await Task.WhenAny(workersDone, Task.Delay(TimeSpan.FromSeconds(seconds + o.DrainSeconds))) != workersDone)
            log.Error("churn: workers still busy after the run's time");
        cpu.Stop();
        double elapsed = (Stopwatch.GetTimestamp() - start) / TicksPerSecond;
        result["clients"] = workers;
        result["line_size"] = lineSize;
        result["seconds"] = elapsed;
        result["connections"] = Interlocked.Read(ref done);
        result["connections_per_sec"] = Interlocked.Read(ref done) / elapsed;
        cpu.Report(result, Interlocked.Read(ref done));
    }
}

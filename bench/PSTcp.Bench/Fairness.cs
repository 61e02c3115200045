// fairness: while N clients flood the server (pipelined as fast as their window allows), a
// probe opens a new connection every --probe-ms (100 ms) and times its connect and its first
// echo. A server whose receive loop keeps its thread through a flood delays both.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Bench;

static partial class Program
{
    static async Task Fairness(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int clients = o.Clients ?? 16;
        int lineSize = o.LineSize ?? 64;
        double seconds = o.Seconds ?? 5;
        double warmup = o.Warmup ?? 0.5;
        int window = o.WindowLines is int wl ? wl * lineSize : o.Window ?? 256 << 10;
        int chunk = Math.Max(lineSize, (o.Chunk ?? 64 << 10) / lineSize * lineSize);
        if (chunk > window) window = chunk;
        // A probe that has not had its echo when the flood has stopped and drained has failed.
        int probeTimeoutMs = (int)((seconds + o.DrainSeconds) * 1000);

        var flood = await Flood.Connect(ep, clients, lineSize, chunk, 64 << 10);
        flood.Start(chunk, window, o.Fill, long.MaxValue, log);
        await Task.WhenAny(flood.Done, Task.Delay(TimeSpan.FromSeconds(warmup)));

        var cpu = ServerStats.StartCpu(o.Pid);
        long t0 = Stopwatch.GetTimestamp(), r0 = flood.Received();
        long end = t0 + (long)(seconds * TicksPerSecond);
        var probes = new List<Task<double[]?>>();
        long next = t0;
        while (Stopwatch.GetTimestamp() < end && !flood.Done.IsCompleted)
        {
            int id = probes.Count;
            probes.Add(Task.Run(() => Probe(ep, id, lineSize, probeTimeoutMs, log)));
            next += (long)(o.ProbeMs / 1000.0 * TicksPerSecond);
            long wait = next - Stopwatch.GetTimestamp();
            if (wait > 0) await Task.Delay(TimeSpan.FromSeconds(wait / TicksPerSecond));
        }
        long t1 = Stopwatch.GetTimestamp(), r1 = flood.Received();
        cpu.Stop();
        flood.Stop();
        if (await Task.WhenAny(flood.Done, Task.Delay(TimeSpan.FromSeconds(o.DrainSeconds))) != flood.Done)
            log.Error($"flood echoes still missing {o.DrainSeconds}s after the senders stopped");
        Task allProbes = Task.WhenAll(probes);
        if (await Task.WhenAny(allProbes, Task.Delay(probeTimeoutMs + 5000)) != allProbes)
            log.Error("a probe did not finish within its timeout");
        await flood.Close(log);

        var connect = new List<double>();
        var echo = new List<double>();
        foreach (var p in probes)
        {
            if (!p.IsCompletedSuccessfully || p.Result is not double[] r) continue;
            connect.Add(r[0]);
            echo.Add(r[1]);
        }
        double elapsed = (t1 - t0) / TicksPerSecond;
        long lines = (r1 - r0) / lineSize;
        result["clients"] = clients;
        result["line_size"] = lineSize;
        result["window"] = window;
        result["seconds"] = elapsed;
        result["probe_interval_ms"] = o.ProbeMs;
        result["probes"] = probes.Count;
        result["probes_ok"] = echo.Count;
        result["flood_lines_per_sec"] = elapsed > 0 ? lines / elapsed : 0.0;
        result["connect_p50_ms"] = Percentile(connect, 0.50);
        result["connect_p99_ms"] = Percentile(connect, 0.99);
        result["connect_max_ms"] = Percentile(connect, 1.0);
        result["first_echo_p50_ms"] = Percentile(echo, 0.50);
        result["first_echo_p99_ms"] = Percentile(echo, 0.99);
        result["first_echo_max_ms"] = Percentile(echo, 1.0);
        cpu.Report(result, lines);
    }

    /// <summary>One probe: [connect ms, first echo ms], both from the start of the connect, or
    /// null when it failed (logged).</summary>
    static async Task<double[]?> Probe(IPEndPoint ep, int id, int lineSize, int timeoutMs, ErrorLog log)
    {
        var pattern = new Pattern(1_000_000 + id, lineSize, lineSize);
        byte[] buf = new byte[lineSize];
        using var cts = new CancellationTokenSource(timeoutMs);
        using var s = NewSocket(ep);
        try
        {
            long a = Stopwatch.GetTimestamp();
            await s.ConnectAsync(ep, cts.Token).ConfigureAwait(false);
            long b = Stopwatch.GetTimestamp();
            ReadOnlyMemory<byte> line = pattern.MemoryAt(0, lineSize);
            await s.SendAsync(line, SocketFlags.None, cts.Token).ConfigureAwait(false);
            int got = 0;
            while (got < lineSize)
            {
                int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, cts.Token).ConfigureAwait(false);
                if (n == 0) break;
                got += n;
            }
            long c = Stopwatch.GetTimestamp();
            if (got < lineSize) { log.Error($"probe {id}: closed after {got} of {lineSize} bytes"); return null; }
            if (!buf.AsSpan().SequenceEqual(line.Span)) { log.Mismatch(Describe(buf, line.Span, 0, 1_000_000 + id)); return null; }
            return new[] { (b - a) * 1000.0 / TicksPerSecond, (c - a) * 1000.0 / TicksPerSecond };
        }
        catch (OperationCanceledException)
        {
            log.Error($"probe {id}: no echo within {timeoutMs} ms");
        }
        catch (SocketException e)
        {
            log.Error($"probe {id}: {e.SocketErrorCode}: {e.Message}");
        }
        return null;
    }

    /// <summary>Nearest-rank percentile (p = 1 is the maximum); null for no samples.</summary>
    static double? Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return null;
        var sorted = values.ToArray();
        Array.Sort(sorted);
        int rank = Math.Clamp((int)Math.Ceiling(p * sorted.Length), 1, sorted.Length);
        return sorted[rank - 1];
    }
}

// pingpong: N clients, each with one line in flight.
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
    // ---------------------------------------------------------------- pingpong
    // N clients, each with one line in flight: send, read the echo, repeat.
    static async Task PingPong(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int clients = o.Clients ?? 1;
        int lineSize = o.LineSize ?? 64;
        double seconds = o.Seconds ?? 5;
        double warmup = o.Warmup ?? Math.Min(1.0, seconds * 0.2);
        var hist = new LatencyHistogram();
        var sockets = new Socket[clients];
        try
        {
            for (int i = 0; i < clients; i++)
            {
                sockets[i] = NewSocket(ep);
                await sockets[i].ConnectAsync(ep);
            }
            long start = Stopwatch.GetTimestamp();
            long warmEnd = start + (long)(warmup * TicksPerSecond);
            long end = warmEnd + (long)(seconds * TicksPerSecond);
            long maxOpsEach = Math.Max(1, o.MaxOps / clients);
            var tasks = new Task<long>[clients];
            for (int i = 0; i < clients; i++)
            {
                int id = i;
                tasks[i] = o.Sync
                    ? Task.Factory.StartNew(() => PingPongClient(o, sockets[id], id, lineSize, warmEnd, end, maxOpsEach, hist, log).GetAwaiter().GetResult(),
                                            TaskCreationOptions.LongRunning)
                    : Task.Run(() => PingPongClient(o, sockets[id], id, lineSize, warmEnd, end, maxOpsEach, hist, log));
            }
            await Task.Delay(TimeSpan.FromSeconds(warmup));
            var cpu = ServerStats.StartCpu(o.Pid);
            long t0 = Stopwatch.GetTimestamp();
            long before = hist.Count;
            Task all = Task.WhenAll(tasks);
            if (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(seconds + o.DrainSeconds))) != all)
                log.Error("pingpong: a round trip did not complete after the run's time");
            long t1 = Math.Min(Stopwatch.GetTimestamp(), end);
            long measured = hist.Count - before;
            long rounds = 0;
            foreach (var t in tasks) if (t.IsCompletedSuccessfully) rounds += t.Result;
            double elapsed = Math.Max(0, (t1 - t0) / TicksPerSecond);
            result["clients"] = clients;
            result["line_size"] = lineSize;
            result["mode"] = o.Sync ? "sync" : "async";
            result["seconds"] = elapsed;
            result["round_trips"] = rounds;
            result["round_trips_per_sec"] = elapsed > 0 ? measured / elapsed : 0.0;
            result["p50_us"] = hist.PercentileMicros(0.50);
            result["p99_us"] = hist.PercentileMicros(0.99);
            result["p999_us"] = hist.PercentileMicros(0.999);
            result["mean_us"] = hist.MeanMicros();
            result["max_us"] = hist.MaxMicros();
            cpu.Report(result, measured);
        }
        finally
        {
            foreach (var s in sockets)
            {
                if (s == null) continue;
                try { s.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
                s.Dispose();
            }
        }
    }

    static async Task<long> PingPongClient(Options o, Socket s, int id, int lineSize, long warmEnd, long end,
                                          long maxOps, LatencyHistogram hist, ErrorLog log)
    {
        var pattern = new Pattern(id, lineSize, 64 << 10);
        byte[] buf = new byte[lineSize];
        long offset = 0, rounds = 0;
        try
        {
            while (rounds < maxOps)
            {
                ReadOnlyMemory<byte> line = pattern.MemoryAt(offset, lineSize);
                long t0 = Stopwatch.GetTimestamp();
                if (t0 >= end) break;
                int got = 0;
                if (o.Sync)
                {
                    SendAllSync(s, line.Span);
                    while (got < lineSize)
                    {
                        int n = s.Receive(buf.AsSpan(got), SocketFlags.None);
                        if (n == 0) break;
                        got += n;
                    }
                }
                else
                {
                    await SendAll(s, line).ConfigureAwait(false);
                    while (got < lineSize)
                    {
                        int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).ConfigureAwait(false);
                        if (n == 0) break;
                        got += n;
                    }
                }
                long t1 = Stopwatch.GetTimestamp();
                if (got < lineSize) { log.Error($"client {id}: connection closed by server after {rounds} round trips"); break; }
                if (!buf.AsSpan().SequenceEqual(line.Span)) { log.Mismatch(Describe(buf, line.Span, offset, id)); break; }
                offset += lineSize;
                rounds++;
                if (t0 >= warmEnd) hist.Record(t1 - t0);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            log.Error($"client {id}: {e.Message}");
        }
        return rounds;
    }

    static void SendAllSync(Socket s, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty) data = data.Slice(s.Send(data, SocketFlags.None));
    }

    static async ValueTask SendAll(Socket s, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = await s.SendAsync(data, SocketFlags.None).ConfigureAwait(false);
            data = data.Slice(n);
        }
    }
}

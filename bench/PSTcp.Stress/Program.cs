// PSTcp.Stress: the load driver of bench/Stress.ps1 and bench/Measure-PowerShell.ps1.
//
//   hold --port N [--connections 10000] [--messages 1000000] [--push-connections K]
//        [--load-probes 10] [--parallel 128] [--timeout-seconds 240]
//       Opens and holds N connections, prints {"event":"connected",...}, then obeys commands
//       read from stdin, one per line:
//         probe K  K fresh clients in turn: connect, send one line, time until its echo
//         push     sends --messages lines spread over the held connections (or over the first
//                  K of them) and verifies every echoed byte; meanwhile --load-probes fresh
//                  clients are timed as above. Prints {"event":"pushed",...}
//         close    closes every held connection gracefully, prints {"event":"closed"} and exits
//       End of stdin acts as close; so does a command not arriving within --timeout-seconds.
//   fill --port N --clients C --lines L
//       C connections each send L lines ("c<client> l<line>") and verify every echoed byte.
//   sink [--seconds S]
//       Listens on 127.0.0.1, port 0, prints {"event":"listening","port":P}; reads and discards
//       everything each connection sends and, when it ends, prints
//       {"event":"closed","bytes":B,"lines":L,...}. Exits when stdin closes or after S seconds.
//
// Every output line is one JSON object. Only loopback peers. Exit code 0 when everything was
// held, sent and echoed exactly; 1 otherwise; 2 for bad arguments.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Stress;

sealed class Args
{
    public string Command = "";
    public int Port;
    public int Connections = 10_000;
    public long Messages = 1_000_000;
    public int PushConnections;          // 0: all held connections
    public int LoadProbes = 10;
    public int ProbeIntervalMs = 200;
    public int Parallel = 128;
    public double TimeoutSeconds = 240;
    public int Clients = 16;
    public long Lines = 62_500;
    public double Seconds = 600;
    public int Chunk = 64 * 1024;

    public static Args Parse(string[] a)
    {
        if (a.Length == 0) throw new ArgumentException("missing command (hold, fill, sink)");
        var o = new Args { Command = a[0] };
        for (int i = 1; i < a.Length; i++)
        {
            string name = a[i];
            string Next() => i + 1 < a.Length ? a[++i] : throw new ArgumentException($"{name} needs a value");
            switch (name)
            {
                case "--port": o.Port = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--connections": o.Connections = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--messages": o.Messages = long.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--push-connections": o.PushConnections = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--load-probes": o.LoadProbes = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--probe-interval-ms": o.ProbeIntervalMs = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--parallel": o.Parallel = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--timeout-seconds": o.TimeoutSeconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--clients": o.Clients = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--lines": o.Lines = long.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--seconds": o.Seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--chunk": o.Chunk = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {name}");
            }
        }
        if (o.Command != "sink" && (o.Port <= 0 || o.Port > 65535)) throw new ArgumentException("--port is required (1-65535)");
        if (o.Connections is < 1 or > 60_000) throw new ArgumentException("--connections must be 1..60000");
        if (o.Clients is < 1 or > 60_000) throw new ArgumentException("--clients must be 1..60000");
        if (o.Messages is < 0 or > 100_000_000 || o.Lines is < 0 or > 100_000_000) throw new ArgumentException("at most 100,000,000 lines");
        if (o.TimeoutSeconds is <= 0 or > 3600 || o.Seconds is <= 0 or > 3600) throw new ArgumentException("timeouts must be in (0, 3600] s");
        if (o.LoadProbes is < 0 or > 1000 || o.Parallel is < 1 or > 10_000 || o.Chunk < 1) throw new ArgumentException("bad --load-probes, --parallel or --chunk");
        return o;
    }
}

/// <summary>What a set of verified streams did, counted across connections.</summary>
sealed class Tally
{
    public long LinesSent, LinesEchoed, BytesSent, BytesEchoed, Errors, Mismatches;
    public readonly List<string> First = new();

    public void Error(string what, bool mismatch = false)
    {
        Interlocked.Increment(ref mismatch ? ref Mismatches : ref Errors);
        lock (First) { if (First.Count < 5) First.Add(what); }
    }

    public void AddTo(Dictionary<string, object?> r)
    {
        r["lines_sent"] = LinesSent;
        r["lines_echoed"] = LinesEchoed;
        r["bytes_sent"] = BytesSent;
        r["bytes_echoed"] = BytesEchoed;
        r["errors"] = Errors;
        r["mismatches"] = Mismatches;
        r["first_errors"] = First.ToArray();
    }
}

static class Program
{
    static readonly IPEndPoint Any = new(IPAddress.Loopback, 0);

    static async Task<int> Main(string[] argv)
    {
        Args a;
        try { a = Args.Parse(argv); }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("usage: PSTcp.Stress hold|fill|sink [--port N] [options] (see the comment at the top of Program.cs)");
            return 2;
        }

        try
        {
            return a.Command switch
            {
                "hold" => await Hold(a),
                "fill" => await Fill(a),
                "sink" => await Sink(a),
                _ => Usage(a.Command),
            };
        }
        catch (Exception e)
        {
            Emit(new() { ["event"] = "failed", ["error"] = $"{e.GetType().Name}: {e.Message}" });
            return 1;
        }
    }

    static int Usage(string command)
    {
        Console.Error.WriteLine($"unknown command {command} (hold, fill, sink)");
        return 2;
    }

    static void Emit(Dictionary<string, object?> fields)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(fields));
        Console.Out.Flush();
    }

    static Socket NewSocket() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    static long OpenFileLimit()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (!line.StartsWith("Max open files", StringComparison.Ordinal)) continue;
                var parts = line.Substring("Max open files".Length).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.TryParse(parts[0], out var v) ? v : -1;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return -1;
    }

    /// <summary>Lines "c&lt;conn&gt; l&lt;line&gt;\n" for lines first..first+count-1 of a connection.</summary>
    static byte[] MakeStream(int conn, long first, long count)
    {
        var sb = new StringBuilder((int)Math.Min(int.MaxValue / 2, count * 14));
        for (long j = first; j < first + count; j++)
        {
            sb.Append('c').Append(conn).Append(" l").Append(j).Append('\n');
        }
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>Sends data in chunks while reading the echo, comparing every byte with what was sent.</summary>
    static async Task RunStream(Socket s, byte[] data, int chunk, int id, Tally t, CancellationToken ct)
    {
        async Task SendAll()
        {
            int off = 0;
            try
            {
                while (off < data.Length)
                {
                    int n = await s.SendAsync(data.AsMemory(off, Math.Min(chunk, data.Length - off)), SocketFlags.None, ct).ConfigureAwait(false);
                    Interlocked.Add(ref t.LinesSent, data.AsSpan(off, n).Count((byte)'\n'));
                    Interlocked.Add(ref t.BytesSent, n);
                    off += n;
                }
            }
            catch (Exception e)
            {
                t.Error($"connection {id}: send failed after {off} of {data.Length} bytes: {e.GetType().Name}: {e.Message}");
            }
        }

        async Task ReceiveAll()
        {
            var buf = new byte[Math.Min(Math.Max(data.Length, 1), 64 * 1024)];
            int got = 0;
            try
            {
                while (got < data.Length)
                {
                    int n = await s.ReceiveAsync(buf.AsMemory(0, Math.Min(buf.Length, data.Length - got)), SocketFlags.None, ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        t.Error($"connection {id}: closed by the server after {got} of {data.Length} echoed bytes");
                        return;
                    }
                    var want = data.AsSpan(got, n);
                    if (!buf.AsSpan(0, n).SequenceEqual(want))
                    {
                        int k = 0;
                        while (k < n && buf[k] == want[k]) k++;
                        t.Error($"connection {id}: echo differs at byte {got + k}", mismatch: true);
                        return;
                    }
                    Interlocked.Add(ref t.LinesEchoed, want.Count((byte)'\n'));
                    Interlocked.Add(ref t.BytesEchoed, n);
                    got += n;
                }
            }
            catch (Exception e)
            {
                t.Error($"connection {id}: receive failed after {got} of {data.Length} bytes: {e.GetType().Name}: {e.Message}");
            }
        }

        await Task.WhenAll(SendAll(), ReceiveAll()).ConfigureAwait(false);
    }

    /// <summary>A fresh client: connect, send one line, time until its echo is back; then close.</summary>
    static async Task<double> Probe(IPEndPoint ep, int k, CancellationToken outer)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(outer);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        var line = Encoding.ASCII.GetBytes($"probe {k}\n");
        var buf = new byte[line.Length];
        var sw = Stopwatch.StartNew();
        using var s = NewSocket();
        await s.ConnectAsync(ep, cts.Token).ConfigureAwait(false);
        await s.SendAsync(line, SocketFlags.None, cts.Token).ConfigureAwait(false);
        int got = 0;
        while (got < line.Length)
        {
            int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None, cts.Token).ConfigureAwait(false);
            if (n == 0) throw new IOException($"probe {k}: closed after {got} bytes");
            got += n;
        }
        double ms = sw.Elapsed.TotalMilliseconds;
        if (!buf.AsSpan().SequenceEqual(line)) throw new IOException($"probe {k}: wrong echo");
        s.Shutdown(SocketShutdown.Both);
        return ms;
    }

    static Dictionary<string, object?> ProbeStats(string phase, List<double> ms, int failed, List<string> errors)
    {
        var sorted = ms.OrderBy(x => x).ToArray();
        return new()
        {
            ["event"] = "probe",
            ["phase"] = phase,
            ["probes"] = ms.Count + failed,
            ["failed"] = failed,
            ["samples_ms"] = ms.Select(x => Math.Round(x, 3)).ToArray(),
            ["p50_ms"] = sorted.Length > 0 ? Math.Round(sorted[sorted.Length / 2], 3) : null,
            ["max_ms"] = sorted.Length > 0 ? Math.Round(sorted[^1], 3) : null,
            ["first_errors"] = errors.Take(3).ToArray(),
        };
    }

    /// <summary>Probes one after another, spaced by intervalMs, count of them (bounded by ct).</summary>
    static async Task<(List<double> Ms, int Failed, List<string> Errors)> Probes(IPEndPoint ep, int count, int first, int intervalMs, CancellationToken ct)
    {
        var ms = new List<double>();
        var errors = new List<string>();
        int failed = 0;
        for (int k = 0; k < count; k++)
        {
            if (k > 0 && intervalMs > 0)
            {
                try { await Task.Delay(intervalMs, ct).ConfigureAwait(false); } catch (OperationCanceledException) { }
            }
            try { ms.Add(await Probe(ep, first + k, ct).ConfigureAwait(false)); }
            catch (Exception e) { failed++; errors.Add($"{e.GetType().Name}: {e.Message}"); }
        }
        return (ms, failed, errors);
    }

    // ------------------------------------------------------------------ hold
    static async Task<int> Hold(Args a)
    {
        var ep = new IPEndPoint(IPAddress.Loopback, a.Port);
        var sockets = new Socket?[a.Connections];
        var errors = new List<string>();
        int next = -1, failed = 0;
        var clock = Stopwatch.StartNew();
        using (var connectCts = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Min(a.TimeoutSeconds, 90))))
        {
            var workers = Enumerable.Range(0, Math.Min(a.Parallel, a.Connections)).Select(async _ =>
            {
                while (true)
                {
                    int i = Interlocked.Increment(ref next);
                    if (i >= sockets.Length) return;
                    var s = NewSocket();
                    try
                    {
                        await s.ConnectAsync(ep, connectCts.Token).ConfigureAwait(false);
                        sockets[i] = s;
                    }
                    catch (Exception e)
                    {
                        s.Dispose();
                        Interlocked.Increment(ref failed);
                        lock (errors) { if (errors.Count < 5) errors.Add($"connection {i}: {e.GetType().Name}: {e.Message}"); }
                    }
                }
            }).ToArray();
            await Task.WhenAll(workers).ConfigureAwait(false);
        }

        var held = sockets.Where(s => s != null).Cast<Socket>().ToArray();
        Emit(new()
        {
            ["event"] = "connected",
            ["connections"] = held.Length,
            ["failed"] = failed,
            ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            ["open_file_limit"] = OpenFileLimit(),
            ["first_errors"] = errors.ToArray(),
        });

        bool ok = held.Length == a.Connections;
        int probeNumber = 0;
        var stdin = Console.In;
        Task<string?>? pending = null;
        while (true)
        {
            pending ??= stdin.ReadLineAsync();
            var done = await Task.WhenAny(pending, Task.Delay(TimeSpan.FromSeconds(a.TimeoutSeconds))).ConfigureAwait(false);
            if (done != pending)
            {
                Emit(new() { ["event"] = "timeout", ["error"] = $"no command within {a.TimeoutSeconds} s; closing" });
                ok = false;
                break;
            }
            string? command = pending.Result?.Trim();
            pending = null;
            if (command == null || command == "close") break;
            var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            using var phaseCts = new CancellationTokenSource(TimeSpan.FromSeconds(a.TimeoutSeconds));
            switch (words[0])
            {
                case "probe":
                {
                    int count = words.Length > 1 ? int.Parse(words[1], CultureInfo.InvariantCulture) : 10;
                    var (ms, pf, pe) = await Probes(ep, Math.Clamp(count, 1, 1000), probeNumber, 0, phaseCts.Token).ConfigureAwait(false);
                    probeNumber += count;
                    if (pf > 0) ok = false;
                    Emit(ProbeStats("idle", ms, pf, pe));
                    break;
                }
                case "push":
                {
                    var r = await Push(a, ep, held, probeNumber, phaseCts.Token).ConfigureAwait(false);
                    probeNumber += a.LoadProbes;
                    if (!(bool)r["ok"]!) ok = false;
                    Emit(r);
                    break;
                }
                default:
                    Emit(new() { ["event"] = "error", ["error"] = $"unknown command '{command}'" });
                    break;
            }
        }

        clock.Restart();
        foreach (var s in held)
        {
            try { s.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
            s.Dispose();
        }
        Emit(new() { ["event"] = "closed", ["connections"] = held.Length, ["seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 3), ["ok"] = ok });
        return ok ? 0 : 1;
    }

    static async Task<Dictionary<string, object?>> Push(Args a, IPEndPoint ep, Socket[] held, int firstProbe, CancellationToken ct)
    {
        int k = a.PushConnections > 0 ? Math.Min(a.PushConnections, held.Length) : held.Length;
        var t = new Tally();
        // Streams are built before the clock starts: 1M short lines are ~12 MB.
        var streams = new byte[k][];
        for (int i = 0; i < k; i++)
        {
            long lines = a.Messages / k + (i < a.Messages % k ? 1 : 0);
            streams[i] = MakeStream(i, 0, lines);
        }

        var clock = Stopwatch.StartNew();
        var probes = Probes(ep, a.LoadProbes, firstProbe, a.ProbeIntervalMs, ct);
        var work = new Task[k];
        for (int i = 0; i < k; i++) work[i] = RunStream(held[i], streams[i], a.Chunk, i, t, ct);
        await Task.WhenAll(work).ConfigureAwait(false);
        double seconds = clock.Elapsed.TotalSeconds;
        var (ms, pf, pe) = await probes.ConfigureAwait(false);

        var r = new Dictionary<string, object?>
        {
            ["event"] = "pushed",
            ["messages"] = a.Messages,
            ["push_connections"] = k,
            ["seconds"] = Math.Round(seconds, 3),
            ["lines_per_sec"] = Math.Round(t.LinesEchoed / Math.Max(seconds, 1e-9)),
        };
        t.AddTo(r);
        var probe = ProbeStats("load", ms, pf, pe);
        r["probe_failed"] = pf;
        r["probe_samples_ms"] = probe["samples_ms"];
        r["probe_p50_ms"] = probe["p50_ms"];
        r["probe_max_ms"] = probe["max_ms"];
        r["probe_errors"] = probe["first_errors"];
        r["ok"] = t.Errors == 0 && t.Mismatches == 0 && t.LinesSent == a.Messages && t.LinesEchoed == a.Messages && pf == 0;
        return r;
    }

    // ------------------------------------------------------------------ fill
    static async Task<int> Fill(Args a)
    {
        var ep = new IPEndPoint(IPAddress.Loopback, a.Port);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(a.TimeoutSeconds));
        var streams = Enumerable.Range(0, a.Clients).Select(i => MakeStream(i, 0, a.Lines)).ToArray();
        var sockets = new List<Socket>();
        var t = new Tally();
        var clock = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < a.Clients; i++)
            {
                var s = NewSocket();
                sockets.Add(s);
                await s.ConnectAsync(ep, cts.Token).ConfigureAwait(false);
            }
            await Task.WhenAll(sockets.Select((s, i) => RunStream(s, streams[i], a.Chunk, i, t, cts.Token))).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            t.Error($"{e.GetType().Name}: {e.Message}");
        }
        double seconds = clock.Elapsed.TotalSeconds;
        foreach (var s in sockets)
        {
            try { s.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
            s.Dispose();
        }
        long want = a.Lines * a.Clients;
        var r = new Dictionary<string, object?>
        {
            ["event"] = "filled",
            ["clients"] = a.Clients,
            ["lines"] = want,
            ["seconds"] = Math.Round(seconds, 3),
            ["lines_per_sec"] = Math.Round(t.LinesEchoed / Math.Max(seconds, 1e-9)),
        };
        t.AddTo(r);
        bool ok = t.Errors == 0 && t.Mismatches == 0 && t.LinesSent == want && t.LinesEchoed == want;
        r["ok"] = ok;
        Emit(r);
        return ok ? 0 : 1;
    }

    // ------------------------------------------------------------------ sink
    static async Task<int> Sink(Args a)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(Any);
        listener.Listen(64);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(a.Seconds));
        Emit(new() { ["event"] = "listening", ["port"] = ((IPEndPoint)listener.LocalEndPoint!).Port });
        // Stdin closing ends the sink.
        _ = Task.Run(async () =>
        {
            try { while (await Console.In.ReadLineAsync().ConfigureAwait(false) != null) { } } catch (IOException) { }
            cts.Cancel();
        });

        int id = 0;
        try
        {
            while (!cts.IsCancellationRequested)
            {
                var s = await listener.AcceptAsync(cts.Token).ConfigureAwait(false);
                int me = ++id;
                _ = Task.Run(async () =>
                {
                    using (s)
                    {
                        var buf = new byte[256 * 1024];
                        long bytes = 0, lines = 0;
                        var clock = new Stopwatch();
                        string? error = null;
                        try
                        {
                            while (true)
                            {
                                int n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token).ConfigureAwait(false);
                                if (n == 0) break;
                                if (bytes == 0) clock.Start();
                                bytes += n;
                                lines += buf.AsSpan(0, n).Count((byte)'\n');
                            }
                        }
                        catch (Exception e) { error = $"{e.GetType().Name}: {e.Message}"; }
                        Emit(new()
                        {
                            ["event"] = "closed",
                            ["connection"] = me,
                            ["bytes"] = bytes,
                            ["lines"] = lines,
                            ["seconds_first_byte_to_end"] = Math.Round(clock.Elapsed.TotalSeconds, 6),
                            ["error"] = error,
                        });
                    }
                });
            }
        }
        catch (OperationCanceledException) { }
        return 0;
    }
}

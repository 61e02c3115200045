// PSTcp.Bench: a load generator for any line-echo server on loopback.
//
// Every scenario verifies every echoed byte: each client sends a deterministic stream of lines
// (a precomputed pattern repeated), so the echo is checked by comparing what was read against
// the pattern at the same stream offset - one vectorised compare per read, no per-line work.
// The hot paths reuse their buffers, send big buffers full of lines and read big buffers.
//
// Usage: PSTcp.Bench <pingpong|pipelined|bulk|churn|idle> --host 127.0.0.1 --port N
//        [--clients N] [--seconds S] [--line-size B] [--pid P] [more, see --help]
// Prints one JSON object to stdout. Exit code 0 when every byte matched and nothing failed,
// 1 when the run saw errors or mismatches, 2 for bad arguments.
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

sealed class Options
{
    public string Scenario = "";
    public string Host = "127.0.0.1";
    public int Port;
    public int? Clients;
    public double? Seconds;
    public int? LineSize;
    public int Pid;
    public long? Bytes;          // bulk: total bytes to echo
    public int? Window;          // bytes outstanding per client
    public int? WindowLines;     // the same, in lines (wins over --window)
    public int? Chunk;           // bytes per send
    public int? RecvBuffer;      // bytes per receive
    public double? Warmup;       // seconds excluded from the timed rates
    public long MaxOps = 100_000_000; // hard count bound for pingpong and churn
    public bool Sync;            // pingpong: blocking calls instead of async
    public int SettleMs = 1000;  // idle, dribble: wait before reading the server's memory
    public double DrainSeconds = 15; // how long to wait for outstanding echoes after the run
    public bool Fill;            // pipelined: send whatever the window has room for (small writes)
    public int ProbeMs = 100;    // fairness: a new probe connection every this many ms
    public int PauseMs = 1;      // dribble: pause between rounds of one byte per connection
    public int PushLines = 16;   // idle: lines each connection sends in the push
    public bool LengthPrefix;    // frames are a 4-byte big-endian length, then the payload
    public bool Phases;          // print "PHASE <name> [arg]" and wait for a line on stdin at each measuring point

    public static string Usage =>
        "usage: PSTcp.Bench <pingpong|pipelined|bulk|churn|idle|fairness|dribble> --host 127.0.0.1 --port N\n" +
        "  [--clients N] [--seconds S] [--line-size B] [--pid P] [--bytes N] [--window B]\n" +
        "  [--window-lines N] [--fill] [--chunk B] [--recv-buffer B] [--warmup S] [--max-ops N]\n" +
        "  [--sync] [--settle-ms N] [--drain-seconds S] [--probe-ms N] [--pause-ms N]\n" +
        "  [--push-lines N] [--frame line|lp4] [--phases]";

    public static Options Parse(string[] args)
    {
        var o = new Options();
        if (args.Length == 0) throw new ArgumentException("missing scenario");
        o.Scenario = args[0];
        for (int i = 1; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value");
            switch (a)
            {
                case "--host": o.Host = Next(); break;
                case "--port": o.Port = int.Parse(Next()); break;
                case "--clients": o.Clients = int.Parse(Next()); break;
                case "--seconds": o.Seconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--line-size": o.LineSize = int.Parse(Next()); break;
                case "--pid": o.Pid = int.Parse(Next()); break;
                case "--bytes": o.Bytes = long.Parse(Next()); break;
                case "--window": o.Window = int.Parse(Next()); break;
                case "--chunk": o.Chunk = int.Parse(Next()); break;
                case "--recv-buffer": o.RecvBuffer = int.Parse(Next()); break;
                case "--warmup": o.Warmup = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--max-ops": o.MaxOps = long.Parse(Next()); break;
                case "--sync": o.Sync = true; break;
                case "--settle-ms": o.SettleMs = int.Parse(Next()); break;
                case "--drain-seconds": o.DrainSeconds = double.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture); break;
                case "--window-lines": o.WindowLines = int.Parse(Next()); break;
                case "--fill": o.Fill = true; break;
                case "--probe-ms": o.ProbeMs = int.Parse(Next()); break;
                case "--pause-ms": o.PauseMs = int.Parse(Next()); break;
                case "--push-lines": o.PushLines = int.Parse(Next()); break;
                case "--phases": o.Phases = true; break;
                case "--frame":
                    o.LengthPrefix = Next() switch
                    {
                        "line" => false,
                        "lp4" => true,
                        var f => throw new ArgumentException($"--frame must be line or lp4, not {f}"),
                    };
                    break;
                default: throw new ArgumentException($"unknown argument {a}");
            }
        }
        if (o.Port <= 0 || o.Port > 65535) throw new ArgumentException("--port is required (1-65535)");
        if (o.LineSize is < 2 or > 1 << 20) throw new ArgumentException("--line-size must be 2..1048576");
        if (o.Clients is < 1 or > 20000) throw new ArgumentException("--clients must be 1..20000");
        if (o.Seconds is <= 0 or > 3600) throw new ArgumentException("--seconds must be in (0, 3600]");
        if (o.WindowLines is < 1 or > 1 << 20) throw new ArgumentException("--window-lines must be 1..1048576");
        if (o.ProbeMs is < 1 or > 60000) throw new ArgumentException("--probe-ms must be 1..60000");
        if (o.PauseMs is < 0 or > 10000) throw new ArgumentException("--pause-ms must be 0..10000");
        if (o.PushLines is < 1 or > 1 << 20) throw new ArgumentException("--push-lines must be 1..1048576");
        if (o.LengthPrefix && o.LineSize is < 5) throw new ArgumentException("--frame lp4 needs --line-size of at least 5");
        return o;
    }
}

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

static partial class Program
{
    static readonly double TicksPerSecond = Stopwatch.Frequency;

    static async Task<int> Main(string[] args)
    {
        Options o;
        try
        {
            if (args.Length > 0 && args[0] is "-h" or "--help") { Console.Out.WriteLine(Options.Usage); return 0; }
            o = Options.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }

        IPEndPoint endPoint;
        try { endPoint = Resolve(o.Host, o.Port); }
        catch (Exception e) { Console.Error.WriteLine($"cannot resolve {o.Host}: {e.Message}"); return 2; }

        Pattern.LengthPrefix = o.LengthPrefix;
        var log = new ErrorLog();
        var result = new Dictionary<string, object?>
        {
            ["scenario"] = o.Scenario,
            ["host"] = o.Host,
            ["port"] = o.Port,
            ["frame"] = o.LengthPrefix ? "lp4" : "line",
        };
        try
        {
            switch (o.Scenario)
            {
                case "pingpong": await PingPong(o, endPoint, log, result); break;
                case "pipelined": await Streams(o, endPoint, log, result, bulk: false); break;
                case "bulk": await Streams(o, endPoint, log, result, bulk: true); break;
                case "churn": await Churn(o, endPoint, log, result); break;
                case "idle": await Idle(o, endPoint, log, result); break;
                case "fairness": await Fairness(o, endPoint, log, result); break;
                case "dribble": await Dribble(o, endPoint, log, result); break;
                default:
                    Console.Error.WriteLine($"unknown scenario {o.Scenario}");
                    Console.Error.WriteLine(Options.Usage);
                    return 2;
            }
        }
        catch (Exception e)
        {
            log.Error($"{e.GetType().Name}: {e.Message}");
        }

        result["errors"] = log.Errors;
        result["mismatches"] = log.Mismatches;
        result["first_errors"] = log.First.ToArray();
        result["ok"] = !log.Any;
        WriteJson(result);
        return log.Any ? 1 : 0;
    }

    static IPEndPoint Resolve(string host, int port)
    {
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        foreach (var a in Dns.GetHostAddresses(host))
            if (IPAddress.IsLoopback(a)) return new IPEndPoint(a, port);
        throw new ArgumentException($"{host} does not resolve to a loopback address");
    }

    static Socket NewSocket(IPEndPoint ep) =>
        new(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    static void WriteJson(Dictionary<string, object?> result)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            foreach (var (k, v) in result)
            {
                switch (v)
                {
                    case null: w.WriteNull(k); break;
                    case string s: w.WriteString(k, s); break;
                    case bool b: w.WriteBoolean(k, b); break;
                    case int i: w.WriteNumber(k, i); break;
                    case long l: w.WriteNumber(k, l); break;
                    case double d: w.WriteNumber(k, Math.Round(d, 3)); break;
                    case string[] a:
                        w.WriteStartArray(k);
                        foreach (var s in a) w.WriteStringValue(s);
                        w.WriteEndArray();
                        break;
                    default: w.WriteString(k, v.ToString()); break;
                }
            }
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    static string Describe(ReadOnlySpan<byte> got, ReadOnlySpan<byte> want, long streamOffset, int client)
    {
        int i = 0;
        while (i < got.Length && got[i] == want[i]) i++;
        static string Show(ReadOnlySpan<byte> s) =>
            Convert.ToHexString(s.Slice(0, Math.Min(16, s.Length)));
        return $"client {client}: mismatch at stream byte {streamOffset + i}: got {Show(got.Slice(i))} want {Show(want.Slice(i))}";
    }

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

    // ---------------------------------------------------------------- pipelined and bulk
    sealed class StreamClient
    {
        public readonly int Id;
        public readonly Socket Socket;
        public readonly Pattern Pattern;
        public readonly byte[] RecvBuf;
        public long Sent;            // written by the sender only
        public long Received;        // written by the receiver only (Interlocked, for the fence)
        public long FinalSent = -1;  // set by the sender when it stops
        public int SenderWaiting;
        public readonly SemaphoreSlim Space = new(0);
        public long DoneTicks;

        public StreamClient(int id, Socket socket, Pattern pattern, int recvBuf)
        {
            Id = id; Socket = socket; Pattern = pattern; RecvBuf = new byte[recvBuf];
        }
    }

    /// <summary>Clients that each stream their pattern to the server and verify the echo,
    /// keeping at most a window outstanding: the pipelined and bulk shapes, and fairness's flood.</summary>
    sealed class Flood
    {
        public readonly StreamClient[] Clients;
        readonly List<Task> _tasks = new();
        int _stop;
        public Task Done { get; private set; } = Task.CompletedTask;

        Flood(StreamClient[] clients) { Clients = clients; }

        public static async Task<Flood> Connect(IPEndPoint ep, int clients, int lineSize, int chunk, int recvBuf, int idBase = 0)
        {
            var all = new StreamClient[clients];
            for (int i = 0; i < clients; i++)
            {
                var s = NewSocket(ep);
                try { await s.ConnectAsync(ep); }
                catch { s.Dispose(); for (int j = 0; j < i; j++) all[j].Socket.Dispose(); throw; }
                var pattern = new Pattern(idBase + i, lineSize, Math.Max(256 << 10, Math.Max(chunk, recvBuf)));
                all[i] = new StreamClient(idBase + i, s, pattern, recvBuf);
            }
            return new Flood(all);
        }

        public void Start(int chunk, int window, bool fill, long totalBytes, ErrorLog log)
        {
            foreach (var c in Clients)
            {
                _tasks.Add(Task.Run(() => Sender(c, chunk, window, fill, totalBytes, () => Volatile.Read(ref _stop) != 0, log)));
                _tasks.Add(Task.Run(() => Receiver(c, totalBytes, log)));
            }
            Done = Task.WhenAll(_tasks);
        }

        public long Received() { long t = 0; foreach (var c in Clients) t += Volatile.Read(ref c.Received); return t; }

        /// <summary>Stops the senders; each half-closes, and its receiver drains the rest.</summary>
        public void Stop()
        {
            Volatile.Write(ref _stop, 1);
            foreach (var c in Clients) c.Space.Release(); // wake waiting senders
        }

        /// <summary>Closes every socket, which releases anything still blocked, and checks that
        /// every client got back what it sent.</summary>
        public async Task Close(ErrorLog log)
        {
            foreach (var c in Clients) { try { c.Socket.Dispose(); } catch { } }
            try { await Done.WaitAsync(TimeSpan.FromSeconds(5)); } catch { }
            foreach (var c in Clients)
            {
                long fs = Volatile.Read(ref c.FinalSent);
                long rc = Volatile.Read(ref c.Received);
                if (fs >= 0 && rc != fs && !log.Any) log.Error($"client {c.Id}: sent {fs} bytes, echoed {rc}");
            }
        }
    }

    static async Task Streams(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result, bool bulk)
    {
        int clients = o.Clients ?? (bulk ? 1 : 16);
        int lineSize = o.LineSize ?? (bulk ? 1024 : 64);
        double seconds = o.Seconds ?? (bulk ? 60 : 5);                       // bulk: a time cap
        long totalBytes = bulk ? (o.Bytes ?? 256L * 1024 * 1024) : long.MaxValue; // bulk: per client
        if (bulk) totalBytes = totalBytes / lineSize * lineSize;
        int window = o.WindowLines is int wl ? wl * lineSize : o.Window ?? (bulk ? 4 << 20 : 256 << 10);
        int chunk = Math.Max(lineSize, (o.Chunk ?? (o.Fill ? window : bulk ? 256 << 10 : 64 << 10)) / lineSize * lineSize);
        int recvBuf = o.RecvBuffer ?? (bulk ? 256 << 10 : 64 << 10);
        if (chunk > window) window = chunk;
        double warmup = bulk ? 0 : (o.Warmup ?? Math.Min(1.0, seconds * 0.2));

        var flood = await Flood.Connect(ep, clients, lineSize, chunk, recvBuf);
        long start = Stopwatch.GetTimestamp();
        var cpu = ServerStats.StartCpu(o.Pid);
        flood.Start(chunk, window, o.Fill, totalBytes, log);
        Task allDone = flood.Done;

        long r0 = 0, t0 = start, r1, t1;
        if (!bulk)
        {
            await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(warmup)));
            if (o.Phases) await Phase("flood", null, result); // the flood goes on while the caller measures
            t0 = Stopwatch.GetTimestamp(); r0 = flood.Received();
            cpu = ServerStats.StartCpu(o.Pid);
            await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(seconds)));
            t1 = Stopwatch.GetTimestamp(); r1 = flood.Received();
            cpu.Stop();
            // A server that holds back what it has read (a frame it does not see as complete)
            // stalls a window-limited client: that is a failure, not a rate of zero.
            if (r1 == r0 && !allDone.IsCompleted) log.Error($"no echo at all during the {seconds}s measured: the server stalled");
            flood.Stop();
            if (await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(o.DrainSeconds))) != allDone)
            {
                log.Error($"echoes still missing {o.DrainSeconds}s after the senders stopped");
            }
        }
        else
        {
            if (await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(seconds))) != allDone)
            {
                log.Error($"bulk transfer not finished within {seconds}s");
            }
            cpu.Stop();
            flood.Stop();
            t1 = Stopwatch.GetTimestamp(); r1 = flood.Received();
            long last = 0;
            foreach (var c in flood.Clients) last = Math.Max(last, Volatile.Read(ref c.DoneTicks));
            if (allDone.IsCompleted && last > 0) t1 = last;
        }
        await flood.Close(log);
        long verified = flood.Received();

        double elapsed = (t1 - t0) / TicksPerSecond;
        double bytes = r1 - r0;
        result["clients"] = clients;
        result["line_size"] = lineSize;
        result["window"] = window;
        result["chunk"] = chunk;
        result["fill"] = o.Fill;
        result["seconds"] = elapsed;
        result["bytes"] = (long)bytes;
        result["lines"] = (long)(bytes / lineSize);
        result["lines_per_sec"] = elapsed > 0 ? bytes / lineSize / elapsed : 0.0;
        result["mb_per_sec"] = elapsed > 0 ? bytes / 1e6 / elapsed : 0.0;
        result["verified_bytes"] = verified;
        cpu.Report(result, (long)(bytes / lineSize));
    }

    static async Task Sender(StreamClient c, int chunk, int window, bool fill, long totalBytes, Func<bool> stopped, ErrorLog log)
    {
        long sent = 0;
        int lineSize = c.Pattern.LineSize;
        // Waits for room for one chunk, or with `fill` for one line, and then sends whatever
        // whole lines fit (at most a chunk): the window-limited shape of small writes.
        int least = fill ? lineSize : chunk;
        try
        {
            while (sent < totalBytes && !stopped())
            {
                // Flow control: keep at most `window` bytes outstanding.
                while (sent + least - Interlocked.Read(ref c.Received) > window)
                {
                    Interlocked.Exchange(ref c.SenderWaiting, 1);
                    if (sent + least - Interlocked.Read(ref c.Received) <= window || stopped())
                    {
                        Volatile.Write(ref c.SenderWaiting, 0);
                        break;
                    }
                    await c.Space.WaitAsync(100).ConfigureAwait(false);
                }
                if (stopped()) break;
                int room = chunk;
                if (fill)
                {
                    long free = window - (sent - Interlocked.Read(ref c.Received));
                    room = (int)Math.Min(chunk, free / lineSize * lineSize);
                    if (room < lineSize) continue;
                }
                int n = (int)Math.Min(room, totalBytes - sent);
                await SendAll(c.Socket, c.Pattern.MemoryAt(sent, n)).ConfigureAwait(false);
                sent += n;
                c.Sent = sent;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            if (!stopped()) log.Error($"client {c.Id} send: {e.Message}");
        }
        Volatile.Write(ref c.FinalSent, sent);
        // Half-close: the server echoes what it has, then closes, which ends a receiver that
        // is already level with us and waiting for more.
        try { c.Socket.Shutdown(SocketShutdown.Send); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }

    static async Task Receiver(StreamClient c, long totalBytes, ErrorLog log)
    {
        long received = 0;
        byte[] buf = c.RecvBuf;
        try
        {
            while (true)
            {
                long fs = Volatile.Read(ref c.FinalSent);
                if (received >= totalBytes || (fs >= 0 && received >= fs)) break;
                int n = await c.Socket.ReceiveAsync(buf, SocketFlags.None).ConfigureAwait(false);
                if (n == 0)
                {
                    fs = Volatile.Read(ref c.FinalSent);
                    if (fs < 0 || received < fs) log.Error($"client {c.Id}: server closed the connection after {received} bytes");
                    break;
                }
                ReadOnlySpan<byte> got = buf.AsSpan(0, n);
                ReadOnlySpan<byte> want = c.Pattern.At(received, n);
                if (!got.SequenceEqual(want))
                {
                    log.Mismatch(Describe(got, want, received, c.Id));
                    break;
                }
                received += n;
                Interlocked.Exchange(ref c.Received, received);
                if (Volatile.Read(ref c.SenderWaiting) != 0 && Interlocked.Exchange(ref c.SenderWaiting, 0) != 0)
                    c.Space.Release();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            long fs = Volatile.Read(ref c.FinalSent);
            if (fs < 0 || received < fs) log.Error($"client {c.Id} receive after {received} bytes: {e.Message}");
        }
        Volatile.Write(ref c.DoneTicks, Stopwatch.GetTimestamp());
    }

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

/// <summary>Latency histogram at 0.1 µs resolution up to 100 ms (larger values go in the last
/// bucket); allocated once, recording is a few interlocked increments (clients share one).</summary>
sealed class LatencyHistogram
{
    const int Buckets = 1_000_000;
    readonly long[] _counts = new long[Buckets];
    long _n;
    long _sumTicks;
    long _maxTicks;
    static readonly double TenthMicrosPerTick = 1e7 / Stopwatch.Frequency;

    public long Count => Interlocked.Read(ref _n);

    public void Record(long ticks)
    {
        long b = (long)(ticks * TenthMicrosPerTick);
        if (b >= Buckets) b = Buckets - 1;
        if (b < 0) b = 0;
        Interlocked.Increment(ref _counts[b]);
        Interlocked.Increment(ref _n);
        Interlocked.Add(ref _sumTicks, ticks);
        long max;
        while (ticks > (max = Interlocked.Read(ref _maxTicks)) && Interlocked.CompareExchange(ref _maxTicks, ticks, max) != max) { }
    }

    public double PercentileMicros(double p)
    {
        long n = Count;
        if (n == 0) return 0;
        long rank = (long)Math.Ceiling(p * n);
        long seen = 0;
        for (int i = 0; i < Buckets; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return (i + 0.5) / 10.0;
        }
        return (Buckets - 1) / 10.0;
    }

    public double MeanMicros() => Count == 0 ? 0 : (double)_sumTicks / Count * 1e6 / Stopwatch.Frequency;
    public double MaxMicros() => _maxTicks * 1e6 / Stopwatch.Frequency;
}

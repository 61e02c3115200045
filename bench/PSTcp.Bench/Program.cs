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
    public int? Chunk;           // bytes per send
    public int? RecvBuffer;      // bytes per receive
    public double? Warmup;       // seconds excluded from the timed rates
    public long MaxOps = 100_000_000; // hard count bound for pingpong and churn
    public bool Sync;            // pingpong: blocking calls instead of async
    public int SettleMs = 1000;  // idle: wait before reading the server's memory
    public double DrainSeconds = 15; // how long to wait for outstanding echoes after the run

    public static string Usage =>
        "usage: PSTcp.Bench <pingpong|pipelined|bulk|churn|idle> --host 127.0.0.1 --port N\n" +
        "  [--clients N] [--seconds S] [--line-size B] [--pid P] [--bytes N] [--window B]\n" +
        "  [--chunk B] [--recv-buffer B] [--warmup S] [--max-ops N] [--sync] [--settle-ms N]\n" +
        "  [--drain-seconds S]";

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
                default: throw new ArgumentException($"unknown argument {a}");
            }
        }
        if (o.Port <= 0 || o.Port > 65535) throw new ArgumentException("--port is required (1-65535)");
        if (o.LineSize is < 2 or > 1 << 20) throw new ArgumentException("--line-size must be 2..1048576");
        if (o.Clients is < 1 or > 20000) throw new ArgumentException("--clients must be 1..20000");
        if (o.Seconds is <= 0 or > 3600) throw new ArgumentException("--seconds must be in (0, 3600]");
        return o;
    }
}

/// <summary>A client's deterministic line stream: a pattern of whole lines, stored twice in a
/// row so that any slice of up to one pattern length starting inside the first copy is
/// contiguous.</summary>
sealed class Pattern
{
    public readonly byte[] Data;   // two copies
    public readonly int Length;    // one copy, a multiple of LineSize
    public readonly int LineSize;

    public Pattern(int clientId, int lineSize, int minBytes)
    {
        LineSize = lineSize;
        int lines = Math.Max(1, (minBytes + lineSize - 1) / lineSize);
        Length = lines * lineSize;
        Data = new byte[Length * 2];
        Span<byte> digits = stackalloc byte[16];
        for (int j = 0; j < lines; j++)
        {
            Span<byte> line = Data.AsSpan(j * lineSize, lineSize);
            int content = lineSize - 1;
            for (int k = 0; k < content; k++)
                line[k] = (byte)('!' + (int)(((uint)clientId * 31u + (uint)j * 7u + (uint)k) % 90u)); // '!'..'z', never '\n'
            // "c<client> l<line> " up front when it fits, so a lost or repeated line never aliases.
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
            line[content] = (byte)'\n';
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

static class Program
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

        var log = new ErrorLog();
        var result = new Dictionary<string, object?>
        {
            ["scenario"] = o.Scenario,
            ["host"] = o.Host,
            ["port"] = o.Port,
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
    static async Task PingPong(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int lineSize = o.LineSize ?? 64;
        double seconds = o.Seconds ?? 5;
        double warmup = o.Warmup ?? Math.Min(1.0, seconds * 0.2);
        var pattern = new Pattern(0, lineSize, 64 << 10);
        var hist = new LatencyHistogram();
        byte[] buf = new byte[lineSize];
        using var s = NewSocket(ep);
        await s.ConnectAsync(ep);

        long start = Stopwatch.GetTimestamp();
        long warmEnd = start + (long)(warmup * TicksPerSecond);
        long end = warmEnd + (long)(seconds * TicksPerSecond);
        long offset = 0, rounds = 0, measuredStart = 0;
        long measuredRounds = 0;
        bool measuring = false;
        long now = start;

        while (rounds < o.MaxOps)
        {
            ReadOnlyMemory<byte> line = pattern.MemoryAt(offset, lineSize);
            long t0 = Stopwatch.GetTimestamp();
            if (!measuring && t0 >= warmEnd) { measuring = true; measuredStart = t0; }
            if (t0 >= end) { now = t0; break; }

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
                await SendAll(s, line);
                while (got < lineSize)
                {
                    int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None);
                    if (n == 0) break;
                    got += n;
                }
            }
            long t1 = Stopwatch.GetTimestamp();
            if (got < lineSize) { log.Error($"connection closed by server after {rounds} round trips"); now = t1; break; }
            if (!buf.AsSpan().SequenceEqual(line.Span))
            {
                log.Mismatch(Describe(buf, line.Span, offset, 0));
                now = t1;
                break;
            }
            offset += lineSize;
            rounds++;
            if (measuring) { hist.Record(t1 - t0); measuredRounds++; }
            now = t1;
        }
        try { s.Shutdown(SocketShutdown.Both); } catch (SocketException) { }

        double elapsed = measuring ? (now - measuredStart) / TicksPerSecond : 0;
        result["clients"] = 1;
        result["line_size"] = lineSize;
        result["mode"] = o.Sync ? "sync" : "async";
        result["seconds"] = elapsed;
        result["round_trips"] = rounds;
        result["round_trips_per_sec"] = elapsed > 0 ? measuredRounds / elapsed : 0.0;
        result["p50_us"] = hist.PercentileMicros(0.50);
        result["p99_us"] = hist.PercentileMicros(0.99);
        result["p999_us"] = hist.PercentileMicros(0.999);
        result["mean_us"] = hist.MeanMicros();
        result["max_us"] = hist.MaxMicros();
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

    static async Task Streams(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result, bool bulk)
    {
        int clients = o.Clients ?? (bulk ? 1 : 16);
        int lineSize = o.LineSize ?? (bulk ? 1024 : 64);
        double seconds = o.Seconds ?? (bulk ? 60 : 5);                       // bulk: a time cap
        long totalBytes = bulk ? (o.Bytes ?? 256L * 1024 * 1024) : long.MaxValue; // bulk: per client
        if (bulk) totalBytes = totalBytes / lineSize * lineSize;
        int window = o.Window ?? (bulk ? 4 << 20 : 256 << 10);
        int chunk = Math.Max(lineSize, (o.Chunk ?? (bulk ? 256 << 10 : 64 << 10)) / lineSize * lineSize);
        int recvBuf = o.RecvBuffer ?? (bulk ? 256 << 10 : 64 << 10);
        if (chunk > window) window = chunk;
        double warmup = bulk ? 0 : (o.Warmup ?? Math.Min(1.0, seconds * 0.2));

        var all = new StreamClient[clients];
        for (int i = 0; i < clients; i++)
        {
            var s = NewSocket(ep);
            try { await s.ConnectAsync(ep); }
            catch { s.Dispose(); for (int j = 0; j < i; j++) all[j].Socket.Dispose(); throw; }
            var pattern = new Pattern(i, lineSize, Math.Max(256 << 10, Math.Max(chunk, recvBuf)));
            all[i] = new StreamClient(i, s, pattern, recvBuf);
        }

        int stop = 0;
        long start = Stopwatch.GetTimestamp();
        var tasks = new List<Task>(clients * 2);
        foreach (var c in all)
        {
            tasks.Add(Task.Run(() => Sender(c, chunk, window, totalBytes, () => Volatile.Read(ref stop) != 0, log)));
            tasks.Add(Task.Run(() => Receiver(c, totalBytes, log)));
        }
        Task allDone = Task.WhenAll(tasks);

        long Total() { long t = 0; foreach (var c in all) t += Volatile.Read(ref c.Received); return t; }

        long r0 = 0, t0 = start, r1, t1;
        if (!bulk)
        {
            await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(warmup)));
            t0 = Stopwatch.GetTimestamp(); r0 = Total();
            await Task.WhenAny(allDone, Task.Delay(TimeSpan.FromSeconds(seconds)));
            t1 = Stopwatch.GetTimestamp(); r1 = Total();
            Volatile.Write(ref stop, 1);
            foreach (var c in all) c.Space.Release(); // wake waiting senders
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
            Volatile.Write(ref stop, 1);
            foreach (var c in all) c.Space.Release();
            t1 = Stopwatch.GetTimestamp(); r1 = Total();
            long last = 0;
            foreach (var c in all) last = Math.Max(last, Volatile.Read(ref c.DoneTicks));
            if (allDone.IsCompleted && last > 0) t1 = last;
        }
        // Anything still blocked (a stalled server) is released by closing the sockets.
        foreach (var c in all) { try { c.Socket.Dispose(); } catch { } }
        try { await allDone.WaitAsync(TimeSpan.FromSeconds(5)); } catch { }

        long verified = Total();
        foreach (var c in all)
        {
            long fs = Volatile.Read(ref c.FinalSent);
            long rc = Volatile.Read(ref c.Received);
            if (fs >= 0 && rc != fs && !log.Any) log.Error($"client {c.Id}: sent {fs} bytes, echoed {rc}");
        }

        double elapsed = (t1 - t0) / TicksPerSecond;
        double bytes = r1 - r0;
        result["clients"] = clients;
        result["line_size"] = lineSize;
        result["window"] = window;
        result["chunk"] = chunk;
        result["seconds"] = elapsed;
        result["bytes"] = (long)bytes;
        result["lines"] = (long)(bytes / lineSize);
        result["lines_per_sec"] = elapsed > 0 ? bytes / lineSize / elapsed : 0.0;
        result["mb_per_sec"] = elapsed > 0 ? bytes / 1e6 / elapsed : 0.0;
        result["verified_bytes"] = verified;
    }

    static async Task Sender(StreamClient c, int chunk, int window, long totalBytes, Func<bool> stopped, ErrorLog log)
    {
        long sent = 0;
        try
        {
            while (sent < totalBytes && !stopped())
            {
                // Flow control: keep at most `window` bytes outstanding.
                while (sent + chunk - Interlocked.Read(ref c.Received) > window)
                {
                    Interlocked.Exchange(ref c.SenderWaiting, 1);
                    if (sent + chunk - Interlocked.Read(ref c.Received) <= window || stopped())
                    {
                        Volatile.Write(ref c.SenderWaiting, 0);
                        break;
                    }
                    await c.Space.WaitAsync(100).ConfigureAwait(false);
                }
                if (stopped()) break;
                int n = (int)Math.Min(chunk, totalBytes - sent);
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
        double elapsed = (Stopwatch.GetTimestamp() - start) / TicksPerSecond;
        result["clients"] = workers;
        result["line_size"] = lineSize;
        result["seconds"] = elapsed;
        result["connections"] = Interlocked.Read(ref done);
        result["connections_per_sec"] = Interlocked.Read(ref done) / elapsed;
    }

    // ---------------------------------------------------------------- idle
    static async Task Idle(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int count = o.Clients ?? 1000;
        int lineSize = o.LineSize ?? 64;
        double hold = o.Seconds ?? 1;
        var pattern = new Pattern(0, lineSize, count * lineSize);
        long? before = o.Pid > 0 ? ReadRssKb(o.Pid) : null;
        if (o.Pid > 0 && before is null) log.Error($"cannot read VmRSS of process {o.Pid}");

        var sockets = new Socket?[count];
        int next = -1;
        long start = Stopwatch.GetTimestamp();

        async Task Opener()
        {
            byte[] buf = new byte[lineSize];
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                ReadOnlyMemory<byte> line = pattern.MemoryAt((long)i * lineSize, lineSize);
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
                    if (got < lineSize) { log.Error($"idle: connection {i} closed after {got} of {lineSize} bytes"); s.Dispose(); continue; }
                    if (!buf.AsSpan().SequenceEqual(line.Span)) log.Mismatch(Describe(buf, line.Span, 0, i));
                    sockets[i] = s;
                }
                catch (SocketException e)
                {
                    log.Error($"idle: connection {i}: {e.SocketErrorCode}: {e.Message}");
                    s.Dispose();
                }
            }
        }

        var openers = new Task[Math.Min(count, 32)];
        for (int k = 0; k < openers.Length; k++) openers[k] = Task.Run(Opener);
        Task openersDone = Task.WhenAll(openers);
        if (await Task.WhenAny(openersDone, Task.Delay(TimeSpan.FromSeconds(60))) != openersDone)
            log.Error("idle: connections not all open within 60s");
        double openSeconds = (Stopwatch.GetTimestamp() - start) / TicksPerSecond;
        int open = 0;
        foreach (var s in sockets) if (s != null) open++;

        await Task.Delay(o.SettleMs);
        long? after = o.Pid > 0 ? ReadRssKb(o.Pid) : null;
        if (hold > 0) await Task.Delay(TimeSpan.FromSeconds(Math.Min(hold, 600)));
        long? afterHold = o.Pid > 0 ? ReadRssKb(o.Pid) : null;

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
        result["connections"] = open;
        result["open_seconds"] = openSeconds;
        result["closed_by_server"] = closedByServer;
        result["pid"] = o.Pid;
        result["rss_before_kb"] = before;
        result["rss_after_kb"] = after;
        result["rss_after_hold_kb"] = afterHold;
        result["bytes_per_connection"] = before is long b && after is long a && open > 0 ? (a - b) * 1024.0 / open : null;
    }

    static long? ReadRssKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1]);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}

/// <summary>Latency histogram at 0.1 µs resolution up to 100 ms (larger values go in the last
/// bucket); allocated once, recording is one increment.</summary>
sealed class LatencyHistogram
{
    const int Buckets = 1_000_000;
    readonly long[] _counts = new long[Buckets];
    long _n;
    double _sumTicks;
    long _maxTicks;
    static readonly double TenthMicrosPerTick = 1e7 / Stopwatch.Frequency;

    public void Record(long ticks)
    {
        long b = (long)(ticks * TenthMicrosPerTick);
        if (b >= Buckets) b = Buckets - 1;
        if (b < 0) b = 0;
        _counts[b]++;
        _n++;
        _sumTicks += ticks;
        if (ticks > _maxTicks) _maxTicks = ticks;
    }

    public double PercentileMicros(double p)
    {
        if (_n == 0) return 0;
        long rank = (long)Math.Ceiling(p * _n);
        long seen = 0;
        for (int i = 0; i < Buckets; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return (i + 0.5) / 10.0;
        }
        return (Buckets - 1) / 10.0;
    }

    public double MeanMicros() => _n == 0 ? 0 : _sumTicks / _n * 1e6 / Stopwatch.Frequency;
    public double MaxMicros() => _maxTicks * 1e6 / Stopwatch.Frequency;
}

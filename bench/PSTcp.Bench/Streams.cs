// pipelined and bulk: clients stream their pattern and verify the echo within a window.
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
}

// dribble: N connections (500) each send B bytes (100) of one line, one byte per segment
// (NoDelay, one send per byte, every connection's next byte only after a round over all of
// them and a pause), without the newline. The server's memory is read before, at the peak
// (every byte sent, no line complete), after the newline has been sent and every line echoed,
// and after the connections have closed. A server that takes a fresh buffer per read pays
// per byte; one that fills the tail of its buffer pays per connection.
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;

namespace PSTcp.Bench;

static partial class Program
{
    static async Task Dribble(Options o, IPEndPoint ep, ErrorLog log, Dictionary<string, object?> result)
    {
        int count = o.Clients ?? 500;
        int bytes = (int)Math.Clamp(o.Bytes ?? 100, 1, 1 << 20);
        var mem = new MemoryProbe(o, result);
        await mem.Read("baseline", 0);

        var sockets = new Socket?[count];
        await ForEachConnection(count, async i =>
        {
            var s = NewSocket(ep);
            try { await s.ConnectAsync(ep).ConfigureAwait(false); sockets[i] = s; }
            catch (SocketException e) { log.Error($"dribble: connection {i}: {e.SocketErrorCode}: {e.Message}"); s.Dispose(); }
        }, log, "dribble: connections not all open within 60s");
        int open = 0;
        foreach (var s in sockets) if (s != null) open++;

        // Each connection's line: B printable bytes, then '\n'.
        var lines = new byte[count][];
        for (int i = 0; i < count; i++) lines[i] = new Pattern(i, bytes + 1, bytes + 1).Data.AsSpan(0, bytes + 1).ToArray();

        var started = System.Diagnostics.Stopwatch.StartNew();
        var cpu = ServerStats.StartCpu(o.Pid); // per segment: what one small read costs the server
        for (int b = 0; b < bytes && !log.Any; b++)
        {
            for (int i = 0; i < count; i++)
            {
                var s = sockets[i];
                if (s == null) continue;
                try { s.Send(lines[i].AsSpan(b, 1), SocketFlags.None); }
                catch (SocketException e) { log.Error($"dribble: byte {b} on connection {i}: {e.SocketErrorCode}"); sockets[i] = null; s.Dispose(); }
            }
            if (o.PauseMs > 0) await Task.Delay(o.PauseMs);
        }
        double dribbleSeconds = started.Elapsed.TotalSeconds;
        await Task.Delay(o.SettleMs);
        cpu.Stop();
        await mem.Read("peak", (long)open * bytes);

        // Complete every line and read its echo.
        await ForEachConnection(count, async i =>
        {
            var s = sockets[i];
            if (s == null) return;
            byte[] buf = new byte[bytes + 1];
            try
            {
                await SendAll(s, lines[i].AsMemory(bytes, 1)).ConfigureAwait(false);
                int got = 0;
                while (got < buf.Length)
                {
                    int n = await s.ReceiveAsync(buf.AsMemory(got), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0) break;
                    got += n;
                }
                if (got < buf.Length) log.Error($"dribble: connection {i} closed after {got} of {buf.Length} bytes");
                else if (!buf.AsSpan().SequenceEqual(lines[i])) log.Mismatch(Describe(buf, lines[i], 0, i));
            }
            catch (SocketException e) { log.Error($"dribble: echo on connection {i}: {e.SocketErrorCode}: {e.Message}"); }
        }, log, "dribble: lines not echoed within 60s");
        await Task.Delay(o.SettleMs);
        await mem.Read("complete", (long)open * (bytes + 1));

        foreach (var s in sockets) s?.Dispose();
        await Task.Delay(o.SettleMs);
        await mem.Read("closed", (long)open * (bytes + 1));

        result["clients"] = count;
        result["connections"] = open;
        result["bytes_per_connection"] = bytes;
        result["dribble_seconds"] = dribbleSeconds;
        result["segments"] = (long)open * bytes;
        cpu.Report(result, (long)open * bytes);
        mem.PerConnection("peak", "baseline", open, "peak");
        mem.PerConnection("complete", "baseline", open, "complete");
        mem.PerConnection("closed", "baseline", open, "closed");
    }
}

// What the generator reads about the server process from outside: CPU time and resident memory
// from /proc (Linux), and, at the measuring points of a run started with --phases, whatever the
// caller answers on stdin (the bench answers a PSTcp server's managed heap).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading.Tasks;

namespace PSTcp.Bench;

static class ServerStats
{
    [DllImport("libc", EntryPoint = "sysconf")]
    static extern long SysConf(int name);
    const int ScClkTck = 2; // _SC_CLK_TCK on Linux

    static readonly Lazy<double> TicksPerSecond = new(() =>
    {
        try { long t = SysConf(ScClkTck); return t > 0 ? t : 100; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return 100; }
    });

    /// <summary>utime + stime of a process in seconds (/proc/pid/stat fields 14 and 15), or
    /// null when it cannot be read.</summary>
    public static double? CpuSeconds(int pid)
    {
        if (pid <= 0) return null;
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: count from after it.
            string[] f = stat.Substring(stat.LastIndexOf(')') + 2).Split(' ');
            long utime = long.Parse(f[11], CultureInfo.InvariantCulture);
            long stime = long.Parse(f[12], CultureInfo.InvariantCulture);
            return (utime + stime) / TicksPerSecond.Value;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return null; }
    }

    public static long? RssKb(int pid)
    {
        if (pid <= 0) return null;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    public static CpuWindow StartCpu(int pid) => new(pid);
}

/// <summary>The server's CPU time over a measured window, per operation.</summary>
sealed class CpuWindow
{
    readonly int _pid;
    readonly double? _start;
    double? _end;

    public CpuWindow(int pid) { _pid = pid; _start = ServerStats.CpuSeconds(pid); }

    public void Stop() => _end ??= ServerStats.CpuSeconds(_pid);

    public void Report(Dictionary<string, object?> result, long ops)
    {
        Stop();
        if (_start is not double a || _end is not double b) return;
        result["server_cpu_seconds"] = b - a;
        result["server_cpu_ns_per_op"] = ops > 0 ? (b - a) * 1e9 / ops : null;
    }
}

/// <summary>The server's memory at named points of a run: VmRSS, and with --phases the
/// caller's answer (a number of bytes, or "-" for none).</summary>
sealed class MemoryProbe
{
    readonly Options _o;
    readonly Dictionary<string, object?> _result;
    readonly Dictionary<string, long> _rss = new();
    readonly Dictionary<string, long> _heap = new();

    public MemoryProbe(Options o, Dictionary<string, object?> result) { _o = o; _result = result; }

    /// <summary>Reads the memory now. serverBytes is what the server should have received by
    /// now in all, so that the caller can wait until it has before it reads.</summary>
    public async Task Read(string name, long serverBytes)
    {
        string? reply = _o.Phases ? await Program.Phase(name, serverBytes.ToString(CultureInfo.InvariantCulture), _result) : null;
        if (ServerStats.RssKb(_o.Pid) is long rss) { _rss[name] = rss; _result[$"rss_{name}_kb"] = rss; }
        if (reply != null && long.TryParse(reply.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long heap))
        {
            _heap[name] = heap;
            _result[$"heap_{name}_bytes"] = heap;
        }
    }

    /// <summary>(memory at name − memory at baseline) / connections, as {label}_rss_per_conn
    /// and {label}_heap_per_conn (bytes).</summary>
    public void PerConnection(string name, string baseline, int connections, string label)
    {
        if (connections <= 0) return;
        if (_rss.TryGetValue(name, out long a) && _rss.TryGetValue(baseline, out long b))
            _result[$"{label}_rss_per_conn"] = (a - b) * 1024.0 / connections;
        if (_heap.TryGetValue(name, out long h) && _heap.TryGetValue(baseline, out long hb))
            _result[$"{label}_heap_per_conn"] = (double)(h - hb) / connections;
    }
}

static partial class Program
{
    /// <summary>With --phases: tells the caller a measuring point has been reached
    /// ("PHASE name arg" on stdout) and waits for its one-line answer on stdin, which is kept in
    /// the result as control_name. The read has its own thread: the run's tasks go on meanwhile.</summary>
    public static async Task<string?> Phase(string name, string? arg, Dictionary<string, object?> result)
    {
        Console.Out.WriteLine(arg is null ? $"PHASE {name}" : $"PHASE {name} {arg}");
        Console.Out.Flush();
        var read = Task.Factory.StartNew(() => Console.In.ReadLine(), TaskCreationOptions.LongRunning);
        if (await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(120))) != read)
            throw new TimeoutException($"no answer on stdin for phase {name} within 120 s");
        string? reply = read.Result;
        result[$"control_{name}"] = reply;
        return reply;
    }
}

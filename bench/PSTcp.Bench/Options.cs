// The generator's command line.
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

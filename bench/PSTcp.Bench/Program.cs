// PSTcp.Bench: a load generator for any line-echo server on loopback.
//
// Every scenario verifies every echoed byte: each client sends a deterministic stream of lines
// (a precomputed pattern repeated), so the echo is checked by comparing what was read against
// the pattern at the same stream offset - one vectorised compare per read, no per-line work.
// The hot paths reuse their buffers, send big buffers full of lines and read big buffers.
// One file per scenario (PingPong.cs, Streams.cs, Churn.cs, Idle.cs, Fairness.cs, Dribble.cs);
// ServerStats.cs reads the server process from outside (CPU, VmRSS, --phases).
//
// Usage: PSTcp.Bench <pingpong|pipelined|bulk|churn|idle|fairness|dribble> --host 127.0.0.1 --port N
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
}

// Latency percentiles without allocation while measuring.
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

using System;
using System.Diagnostics;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>Memory and fairness measurements: alone, so other tests' heaps and threads don't blur them.</summary>
    [CollectionDefinition(Name, DisableParallelization = true)]
    public sealed class ReceivePathCollection
    {
        public const string Name = "Receive path (run alone)";
    }

    [Collection(ReceivePathCollection.Name)]
    public class ReceivePathTests
    {
        [Fact]
        public async Task AFloodingConnectionDoesNotDelayAnotherConnectionsFirstEcho()
        {
            await using var server = new EchoServer(o => o.QueueMessages = false);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var window = Bytes.Concat(Enumerable.Repeat(Bytes.Latin1(new string('f', 63) + "\n"), 1024).ToArray());
            var flooders = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => server.ConnectAsync()));
            long echoed = 0;
            var flooding = flooders.SelectMany(client => new[]
            {
                Task.Run(async () =>
                {
                    try { while (!stop.IsCancellationRequested) await client.Socket.SendAsync(window, SocketFlags.None, stop.Token); }
                    catch (Exception e) when (e is OperationCanceledException || e is SocketException) { }
                }),
                Task.Run(async () =>
                {
                    var buffer = new byte[256 * 1024];
                    try
                    {
                        int n;
                        while ((n = await client.Socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token)) > 0) Interlocked.Add(ref echoed, n);
                    }
                    catch (Exception e) when (e is OperationCanceledException || e is SocketException) { }
                }),
            }).ToArray();

            try
            {
                await Poll.UntilAsync(() => Interlocked.Read(ref echoed) > 16 * 1024 * 1024, "the flood is under way");
                var worst = TimeSpan.Zero;
                for (int probe = 0; probe < 5; probe++)
                {
                    var clock = Stopwatch.StartNew();
                    using var client = await server.ConnectAsync();
                    await client.SendAsync("probe\n");
                    Assert.Equal("probe\n", await client.ReadLineTextAsync(TimeSpan.FromSeconds(10)));
                    if (clock.Elapsed > worst) worst = clock.Elapsed;
                }

                // A generous bound, not a benchmark: the flood kept its thread for the whole
                // flood before the loop yielded (7.8 s measured).
                Assert.True(worst < TimeSpan.FromSeconds(1), $"a new connection's first echo took {worst.TotalMilliseconds:0} ms during the flood");
            }
            finally
            {
                stop.Cancel();
                foreach (var client in flooders) client.Dispose();
                await Task.WhenAll(flooding);
            }
        }

        [Fact]
        public async Task APartialLineDribbledOneBytePerSegmentCostsMemoryInProportion()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("warm\n");
            Assert.Equal("warm\n", await client.ReadLineTextAsync());
            var connection = Assert.Single(server.Server.Connections);

            long before = GC.GetTotalMemory(forceFullCollection: true);
            const int bytes = 1000;
            var one = new byte[] { (byte)'d' };
            for (int i = 1; i <= bytes; i++)
            {
                await client.SendAsync(one);
                // Each byte is its own read: wait for the server to take it.
                await Poll.UntilAsync(() => connection.BytesReceived == 5 + i, $"byte {i} read");
            }

            long after = GC.GetTotalMemory(forceFullCollection: true);
            Assert.True(after - before < 2 * 1024 * 1024, $"{bytes} single-byte segments of one partial line cost {(after - before) / 1024} KB of managed heap");
            Assert.True(connection.ReceiveBufferSize <= 4 * bytes, $"the connection holds a {connection.ReceiveBufferSize} byte buffer for {bytes} bytes");

            await client.SendAsync("\n");
            Assert.Equal(new string('d', bytes) + "\n", await client.ReadLineTextAsync());
            // Idle again, after carrying data: no receive buffer at all.
            await Poll.UntilAsync(() => connection.ReceiveBufferSize == 0, "the connection gave its buffer back");
        }

        [Fact]
        public async Task ALineOfTheFullLimitStillWorks()
        {
            const int max = 64 * 1024;
            await using var server = new EchoServer(o => o.MaxLineLength = max);
            using var client = await server.ConnectAsync();
            var line = new string('L', max) + "\r\n";
            await client.SendAsync(line);
            Assert.Equal(line, await client.ReadLineTextAsync());
            var message = Assert.Single(await server.TakeAsync(1));
            Assert.Equal(max, message.Length);
        }

        [Fact]
        public async Task IdleConnectionsHoldNoReceiveBufferAfterCarryingData()
        {
            await using var server = new EchoServer(o => o.QueueMessages = false);
            var clients = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => server.ConnectAsync()));
            try
            {
                var chunk = Bytes.Latin1(string.Concat(Enumerable.Repeat(new string('p', 99) + "\n", 2000)));
                foreach (var client in clients)
                {
                    await client.SendAsync(chunk);
                    await client.ReadExactlyAsync(chunk.Length);
                }

                try
                {
                    await Poll.UntilAsync(() => server.Server.Connections.All(c => c.ReceiveBufferSize == 0), "every connection gave its buffer back");
                }
                catch (TimeoutException e)
                {
                    throw new TimeoutException(e.Message + ": " + string.Join(", ", server.Server.Connections.Select(c => c.ReceiveBufferSize)));
                }
            }
            finally
            {
                foreach (var client in clients) client.Dispose();
            }
        }
    }
}

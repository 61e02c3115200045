using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.Linq;
using System.Net;
using System.Text;
using System.Threading.Tasks;
using PSTcp.Diagnostics;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>Metrics tests run alone: a listener turns the PSTcp instruments on for the whole process.</summary>
    [CollectionDefinition("Metrics", DisableParallelization = true)]
    public sealed class MetricsCollection
    {
    }

    /// <summary>The PSTcp meter as a MeterListener (what dotnet-counters and OpenTelemetry use) sees it.</summary>
    [Collection("Metrics")]
    public class MetricsTests
    {
        /// <summary>Sums every PSTcp measurement by instrument and the value of one tag.</summary>
        private sealed class Recorder : IDisposable
        {
            private readonly MeterListener _listener = new MeterListener();
            private readonly ConcurrentDictionary<(string, string), double> _sums = new ConcurrentDictionary<(string, string), double>();
            private readonly ConcurrentDictionary<(string, string), long> _counts = new ConcurrentDictionary<(string, string), long>();
            private readonly ConcurrentQueue<(string Instrument, string Tag, string Value)> _tags = new ConcurrentQueue<(string, string, string)>();

            public Recorder()
            {
                _listener.InstrumentPublished = (instrument, listener) =>
                {
                    if (instrument.Meter.Name == PSTcpMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
                };
                _listener.SetMeasurementEventCallback<long>((instrument, value, tags, state) => Record(instrument, value, tags));
                _listener.SetMeasurementEventCallback<double>((instrument, value, tags, state) => Record(instrument, value, tags));
                _listener.Start();
            }

            private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object>> tags)
            {
                string name = null;
                foreach (var tag in tags)
                {
                    if (tag.Key == PSTcpMetrics.ServerNameTag || tag.Key == PSTcpMetrics.ConnectionNameTag) name = tag.Value as string;
                    else _tags.Enqueue((instrument.Name, tag.Key, tag.Value as string));
                }

                var key = (instrument.Name, name);
                _sums.AddOrUpdate(key, value, (_, sum) => sum + value);
                _counts.AddOrUpdate(key, 1, (_, count) => count + 1);
            }

            public double Sum(string instrument, string name) => _sums.TryGetValue((instrument, name), out var sum) ? sum : 0;

            public long Count(string instrument, string name) => _counts.TryGetValue((instrument, name), out var count) ? count : 0;

            public IEnumerable<string> TagValues(string instrument, string tag) =>
                _tags.Where(t => t.Instrument == instrument && t.Tag == tag).Select(t => t.Value);

            public void Observe() => _listener.RecordObservableInstruments();

            public void Dispose() => _listener.Dispose();
        }

        private static string UniqueName(string what) => what + "-" + Guid.NewGuid().ToString("N");

        [Fact]
        public async Task TenThousandLinesCountTheSameOnTheMeterAsOnTheServer()
        {
            using var recorder = new Recorder();
            var name = UniqueName("metrics");
            await using var server = new EchoServer(o => { o.Name = name; o.QueueCapacity = 20000; });
            const int clients = 2, perClient = 5000;
            long sent = 0;
            var tasks = Enumerable.Range(0, clients).Select(async c =>
            {
                using var client = await server.ConnectAsync();
                var payload = new StringBuilder();
                for (int i = 0; i < perClient; i++) payload.Append("client ").Append(c).Append(" line ").Append(i).Append('\n');
                var bytes = Bytes.Latin1(payload.ToString());
                System.Threading.Interlocked.Add(ref sent, bytes.Length);
                await client.SendAsync(bytes);
                Assert.Equal(bytes, await client.ReadExactlyAsync(bytes.Length, TimeSpan.FromSeconds(30)));
            }).ToList();
            await Poll.WithTimeout(Task.WhenAll(tasks), "clients echoed", TimeSpan.FromSeconds(60));
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0 && recorder.Count("pstcp.connection.duration", name) == clients,
                "connections closed and their duration recorded");

            var s = server.Server;
            Assert.Equal(clients * perClient, s.MessagesReceived);
            Assert.Equal(sent, s.BytesReceived);
            Assert.Equal(s.TotalConnections, (long)recorder.Sum("pstcp.connections", name));
            Assert.Equal(clients, s.TotalConnections);
            Assert.Equal(0, recorder.Sum("pstcp.connections.active", name));
            Assert.Equal(2 * clients, recorder.Count("pstcp.connections.active", name));
            Assert.Equal(s.MessagesReceived, (long)recorder.Sum("pstcp.messages.received", name));
            Assert.Equal(s.BytesReceived, (long)recorder.Sum("pstcp.bytes.received", name));
            // An echo server sends back what it read, byte for byte.
            Assert.Equal(s.MessagesReceived, (long)recorder.Sum("pstcp.messages.sent", name));
            Assert.Equal(s.BytesReceived, (long)recorder.Sum("pstcp.bytes.sent", name));
            Assert.Equal(s.MessagesDropped, (long)recorder.Sum("pstcp.queue.dropped", name));
            Assert.Equal(0, s.MessagesDropped);
            Assert.InRange(recorder.Sum("pstcp.connection.duration", name), 0, 120);

            // The queue's length is observed when the listener asks: all 10,000 wait for a consumer.
            recorder.Observe();
            Assert.Equal(s.QueueLength, (long)recorder.Sum("pstcp.queue.length", name));
            Assert.Equal(clients * perClient, s.QueueLength);
        }

        [Theory]
        [InlineData(QueueFullMode.DropOldest)]
        [InlineData(QueueFullMode.DropNewest)]
        public async Task DropsCountTheSameOnTheMeterAsOnTheServer(QueueFullMode mode)
        {
            using var recorder = new Recorder();
            var name = UniqueName("drops");
            await using var server = new EchoServer(o => { o.Name = name; o.QueueCapacity = 100; o.QueueFullMode = mode; });
            using var client = await server.ConnectAsync();
            var payload = new StringBuilder();
            for (int i = 0; i < 1000; i++) payload.Append("line ").Append(i).Append('\n');
            var bytes = Bytes.Latin1(payload.ToString());
            await client.SendAsync(bytes);
            Assert.Equal(bytes, await client.ReadExactlyAsync(bytes.Length, TimeSpan.FromSeconds(30)));
            // A message is counted as read before it is queued or dropped, and a drop on the server a
            // moment before the meter: wait for both to settle (a meter that missed drops times out).
            await Poll.UntilAsync(() => server.Server.MessagesDropped == 900 && recorder.Sum("pstcp.queue.dropped", name) == 900,
                "900 drops on the server and the meter");
            Assert.Equal(1000, server.Server.MessagesReceived);
            Assert.Equal(100, server.Server.QueueLength);
        }

        [Fact]
        public async Task ActiveConnectionsRiseAndFallWithClients()
        {
            using var recorder = new Recorder();
            var name = UniqueName("active");
            await using var server = new EchoServer(o => o.Name = name);
            var client = await server.ConnectAsync();
            await client.SendAsync("hi\n");
            Assert.Equal("hi\n", await client.ReadLineTextAsync());
            Assert.Equal(1, recorder.Sum("pstcp.connections.active", name));
            client.Dispose();
            await Poll.UntilAsync(() => recorder.Sum("pstcp.connections.active", name) == 0, "active back to 0");
        }

        [Fact]
        public async Task ClientConnectionsAreTaggedWithTheirName()
        {
            using var recorder = new Recorder();
            await using var server = new EchoServer();
            var name = UniqueName("client");
            var connection = await TcpConnection.ConnectAsync("127.0.0.1", server.Port, new ConnectionOptions { Name = name }, TimeSpan.FromSeconds(10), default);
            await connection.SendAsync(Bytes.Latin1("one\ntwo\n"));
            await Poll.UntilAsync(() => connection.MessagesReceived == 2, "echo read");
            await connection.CloseAsync(TimeSpan.FromSeconds(5));
            await Poll.UntilAsync(() => recorder.Count("pstcp.connection.duration", name) == 1, "duration recorded");
            Assert.Equal(1, recorder.Sum("pstcp.connections", name));
            Assert.Equal(0, recorder.Sum("pstcp.connections.active", name));
            Assert.Equal(8, recorder.Sum("pstcp.bytes.sent", name));
            Assert.Equal(connection.BytesReceived, (long)recorder.Sum("pstcp.bytes.received", name));
            Assert.Equal(2, recorder.Sum("pstcp.messages.received", name));
        }

        [Fact]
        public async Task UnnamedClientConnectionsShareOneUntaggedSeries()
        {
            using var recorder = new Recorder();
            await using var server = new EchoServer();
            for (int i = 0; i < 3; i++)
            {
                var connection = await TcpConnection.ConnectAsync("127.0.0.1", server.Port, new ConnectionOptions(), TimeSpan.FromSeconds(10), default);
                await connection.CloseAsync(TimeSpan.FromSeconds(5));
            }

            await Poll.UntilAsync(() => recorder.Count("pstcp.connection.duration", null) == 3, "durations recorded");
            Assert.Equal(3, recorder.Sum("pstcp.connections", null));
        }

        [Fact]
        public async Task RejectedConnectionsAreCountedWithTheReason()
        {
            using var recorder = new Recorder();
            var name = UniqueName("rejecting");
            await using (var server = new EchoServer(o => { o.Name = name; o.AllowedRemoteAddresses = new[] { AddressRange.Parse("10.0.0.0/8") }; }))
            {
                using var client = await server.ConnectAsync();
                var (data, _) = await client.ReadToEndAsync(TimeSpan.FromSeconds(10));
                Assert.Empty(data);
                // The server's count comes a moment before the meter's: wait for both.
                await Poll.UntilAsync(() => server.Server.ConnectionsRejected == 1 && recorder.Sum("pstcp.connections.rejected", name) == 1, "rejection counted");
                Assert.Equal(0, recorder.Sum("pstcp.connections", name));
            }

            var limited = UniqueName("limited");
            await using (var server = new EchoServer(o => { o.Name = limited; o.MaxConnections = 1; }))
            {
                using var first = await server.ConnectAsync();
                await first.SendAsync("hi\n");
                Assert.Equal("hi\n", await first.ReadLineTextAsync());
                using var second = await server.ConnectAsync();
                var (data, _) = await second.ReadToEndAsync(TimeSpan.FromSeconds(10));
                Assert.Empty(data);
                await Poll.UntilAsync(() => server.Server.ConnectionsRefused == 1 && recorder.Sum("pstcp.connections.rejected", limited) == 1, "refusal counted");
                Assert.Equal(1, recorder.Sum("pstcp.connections", limited));
            }

            Assert.Contains("not_allowed", recorder.TagValues("pstcp.connections.rejected", PSTcpMetrics.RejectionReasonTag));
            Assert.Contains("max_connections", recorder.TagValues("pstcp.connections.rejected", PSTcpMetrics.RejectionReasonTag));
        }

        [Fact]
        public async Task TlsHandshakesInProgressAreCountedUntilTheyEnd()
        {
            using var recorder = new Recorder();
            var name = UniqueName("tls");
            using var key = System.Security.Cryptography.RSA.Create(2048);
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=localhost", key,
                System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
            using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(
                ephemeral.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx), null);
            await using var server = new EchoServer(o => { o.Name = name; o.Certificate = certificate; o.TlsHandshakeTimeout = TimeSpan.FromSeconds(60); });

            // A client that connects and says nothing keeps its handshake open.
            var silent = await server.ConnectAsync();
            await Poll.UntilAsync(() => recorder.Sum("pstcp.tls.handshakes.active", name) == 1, "one handshake in progress");

            // One that completes its handshake comes and goes.
            using (var tcp = new System.Net.Sockets.TcpClient())
            {
                await tcp.ConnectAsync(IPAddress.Loopback, server.Port);
                using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false, (sender, cert, chain, errors) => true);
                await Poll.WithTimeout(tls.AuthenticateAsClientAsync("localhost"), "client handshake");
                await tls.WriteAsync(Bytes.Latin1("hi\n"));
                var echo = new byte[3];
                int read = 0;
                while (read < 3) read += await tls.ReadAsync(echo.AsMemory(read));
                Assert.Equal("hi\n", Encoding.ASCII.GetString(echo));
            }

            Assert.Equal(1, recorder.Sum("pstcp.tls.handshakes.active", name));
            silent.Dispose();
            await Poll.UntilAsync(() => recorder.Sum("pstcp.tls.handshakes.active", name) == 0, "the silent client's handshake ended");
            Assert.Equal(4, recorder.Count("pstcp.tls.handshakes.active", name));
        }

        [Fact]
        public async Task NothingIsAllocatedWhenNobodyListens()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("hi\n");
            Assert.Equal("hi\n", await client.ReadLineTextAsync());
            var connection = Assert.Single(server.Server.Connections);

            // Warm up, then count what the hooks allocate on this thread.
            PSTcpMetrics.BytesReceived(connection, 1);
            PSTcpMetrics.MessagesReceived(connection, 1);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10000; i++)
            {
                PSTcpMetrics.BytesReceived(connection, 100);
                PSTcpMetrics.MessagesReceived(connection, 1);
                PSTcpMetrics.BytesSent(connection, 100);
                PSTcpMetrics.MessagesSent(connection, 1);
            }

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }
}

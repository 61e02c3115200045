using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using PSTcp.Framing;
using Xunit;
using Xunit.Abstractions;

namespace PSTcp.Tests
{
    /// <summary>
    /// Issue 19's torture test: seeded, randomized rounds that mix floods, dribbles, resets and
    /// half-closes from raw clients, echo servers and relays, Line and Raw framing, Wait and Drop
    /// queues (bounded in messages and bytes), a slow consumer, and Stop / Disconnect / Abort at
    /// random moments, then check SPEC's guarantees after every round (see <see cref="CheckRound"/>).
    /// </summary>
    /// <remarks>
    /// Knobs (environment): PSTCP_TORTURE_SECONDS (default 30: the suite runs this twice, with and
    /// without the epoll pollers), PSTCP_TORTURE_SEED (replays exactly that round, as printed by a
    /// failure), PSTCP_TORTURE_ROUNDS (a number of rounds instead of a time budget; with a seed,
    /// rounds seed, seed+1, …), PSTCP_TORTURE_SLACK_MS (what a Stop or Disconnect may take beyond
    /// its timeout; default 250).
    /// </remarks>
    public class TortureTests
    {
        private readonly ITestOutputHelper _output;

        public TortureTests(ITestOutputHelper output)
        {
            _output = output;
        }

        private static int Env(string name, int fallback) =>
            int.TryParse(Environment.GetEnvironmentVariable(name), out int value) ? value : fallback;

        [Fact]
        public async Task RandomizedRoundsKeepTheGuarantees()
        {
            int seconds = Env("PSTCP_TORTURE_SECONDS", 30);
            int rounds = Env("PSTCP_TORTURE_ROUNDS", 0);
            var fixedSeed = Environment.GetEnvironmentVariable("PSTCP_TORTURE_SEED");
            int baseSeed = fixedSeed != null ? int.Parse(fixedSeed) : Environment.TickCount & 0x3FFFFFFF;
            if (fixedSeed != null && rounds == 0) rounds = 1;

            long baseline = Memory();
            var clock = Stopwatch.StartNew();
            int round = 0;
            var failures = new List<string>();
            while (rounds > 0 ? round < rounds : clock.Elapsed < TimeSpan.FromSeconds(seconds))
            {
                int seed = baseSeed + round++;
                var log = new List<string>();
                try
                {
                    await Poll.WithTimeout(RunRoundAsync(seed, log), $"round {seed}", TimeSpan.FromSeconds(60));
                }
                catch (Exception e)
                {
                    failures.Add($"Seed {seed} failed (replay: PSTCP_TORTURE_SEED={seed}): {string.Join("; ", log)}: {e.Message}");
                    _output.WriteLine(failures[failures.Count - 1]);
                    _output.WriteLine(e.ToString());
                    if (failures.Count >= 3) break;
                }
            }

            _output.WriteLine($"{round} round(s), seeds {baseSeed}..{baseSeed + round - 1}, {clock.Elapsed.TotalSeconds:0.0} s, PSTCP_EPOLL={Environment.GetEnvironmentVariable("PSTCP_EPOLL") ?? "(default)"}");
            Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));

            // Memory back near its baseline: nothing of the rounds is still held.
            long after = Memory();
            Assert.True(after - baseline < 64L * 1024 * 1024, $"managed heap {baseline / 1024:N0} KB before, {after / 1024:N0} KB after {round} round(s)");
        }

        private static long Memory()
        {
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            return GC.GetTotalMemory(true);
        }

        private enum ClientKind { Flood, Dribble, Reset, HalfClose }

        private enum Action { StopMidway, DisconnectOne, AbortOne, StopAtEnd }

        private static async Task RunRoundAsync(int seed, List<string> log)
        {
            var random = new Random(seed);
            bool raw = random.Next(3) == 0;
            bool relay = random.Next(4) == 0;
            var mode = new[] { QueueFullMode.Wait, QueueFullMode.DropOldest, QueueFullMode.DropNewest }[random.Next(3)];
            int capacity = new[] { 4, 64, 10000 }[random.Next(3)];
            long byteLimit = new long[] { 4096, 64 * 1024, MessageQueue.DefaultByteLimit }[random.Next(3)];
            int clientCount = random.Next(1, 6);
            var action = (Action)random.Next(4);
            var stopTimeout = TimeSpan.FromMilliseconds(new[] { 200, 500, 1000 }[random.Next(3)]);
            var slack = TimeSpan.FromMilliseconds(Env("PSTCP_TORTURE_SLACK_MS", 250));
            log.Add($"{(raw ? "Raw" : "Line")} {(relay ? "relay" : "echo")} {mode} capacity {capacity} bytes {byteLimit} clients {clientCount} {action} timeout {stopTimeout.TotalMilliseconds} ms");

            TcpServer target = null;
            if (relay)
            {
                target = TcpServer.Start(new TcpServerOptions
                {
                    Address = "127.0.0.1", Port = 0, QueueMessages = false, Framing = raw ? FramingKind.Raw : FramingKind.Line,
                    StopTimeout = TimeSpan.FromSeconds(2),
                }, EchoLineHandler.Instance);
            }

            var options = new TcpServerOptions
            {
                Address = "127.0.0.1",
                Port = 0,
                Framing = raw ? FramingKind.Raw : FramingKind.Line,
                QueueCapacity = capacity,
                QueueFullMode = mode,
                QueueByteLimit = byteLimit,
                StopTimeout = stopTimeout,
            };
            LineHandler handler = relay
                ? new RelayHandler("127.0.0.1", target.Port, new ConnectionOptions { Framing = options.Framing, QueueCapacity = capacity, QueueFullMode = mode, QueueByteLimit = byteLimit }, TimeSpan.FromSeconds(5), queueMessages: true)
                : (LineHandler)EchoLineHandler.Instance;
            var server = TcpServer.Start(options, handler);
            var accepted = new ConcurrentDictionary<TcpConnection, bool>();
            server.ConnectionChanged += (_, e) => { if (e.Opened) accepted[e.Connection] = true; };

            var consumer = new Consumer(server.Queue, new Random(random.Next()));
            var consuming = consumer.RunAsync();
            var clients = new List<Client>();
            try
            {
                for (int i = 0; i < clientCount; i++)
                {
                    var kind = (ClientKind)random.Next(4);
                    clients.Add(await Client.ConnectAsync(server.Port, kind, raw, new Random(random.Next())));
                }

                var running = clients.Select(c => c.RunAsync()).ToList();
                var results = new List<(string What, bool Graceful, TimeSpan Took, TimeSpan Timeout, TcpConnection Connection)>();
                await Task.Delay(random.Next(0, 300));
                switch (action)
                {
                    case Action.StopMidway:
                        results.Add(await TimedAsync("Stop", server.StopAsync(stopTimeout), stopTimeout, null));
                        break;
                    case Action.DisconnectOne:
                    case Action.AbortOne:
                        var open = server.Connections;
                        if (open.Count > 0)
                        {
                            var victim = open[random.Next(open.Count)];
                            if (action == Action.AbortOne)
                            {
                                victim.Abort(reset: random.Next(2) == 0);
                                results.Add(("Abort", false, TimeSpan.Zero, TimeSpan.Zero, victim));
                            }
                            else
                            {
                                results.Add(await TimedAsync("Disconnect", victim.CloseAsync(stopTimeout), stopTimeout, victim));
                            }
                        }

                        break;
                }

                // The clients finish (they close once the server does, or when done sending).
                var allClients = Task.WhenAll(running);
                if (action != Action.StopMidway)
                {
                    await Task.WhenAny(allClients, Task.Delay(TimeSpan.FromSeconds(15)));
                    results.Add(await TimedAsync("Stop", server.StopAsync(stopTimeout), stopTimeout, null));
                }

                // Every socket of the server is closed once Stop returns.
                Check(server.State == ServerState.Stopped, $"server {server.State} after Stop returned");
                Check(server.ConnectionCount == 0, $"{server.ConnectionCount} connection(s) still open after Stop returned");
                foreach (var connection in accepted.Keys)
                {
                    Check(connection.State == ConnectionState.Closed, $"connection {connection.Id} {connection.State} after Stop returned");
                }

                await Poll.WithTimeout(allClients, "the clients end after Stop", TimeSpan.FromSeconds(15));
                await Poll.WithTimeout(consuming, "the consumer drains after Stop", TimeSpan.FromSeconds(15));
                CheckRound(raw, relay, mode, clients, consumer, accepted.Keys.ToList(), results, slack, log);
            }
            finally
            {
                foreach (var client in clients) client.Dispose();
                await Poll.WithTimeout(server.StopAsync(TimeSpan.FromSeconds(2)), "final stop", TimeSpan.FromSeconds(15));
                if (target != null) await Poll.WithTimeout(target.StopAsync(TimeSpan.FromSeconds(2)), "target stop", TimeSpan.FromSeconds(15));
            }
        }

        private static async Task<(string, bool, TimeSpan, TimeSpan, TcpConnection)> TimedAsync(string what, Task<bool> close, TimeSpan timeout, TcpConnection connection)
        {
            var clock = Stopwatch.StartNew();
            bool graceful = await Poll.WithTimeout(close, what, TimeSpan.FromSeconds(30));
            return (what, graceful, clock.Elapsed, timeout, connection);
        }

        /// <summary>
        /// The invariants: (1) every byte a client got back equals what it sent, up to where it
        /// stopped; (2) per connection, received = consumed + dropped, exactly (the queue is
        /// drained); (3) per connection, messages come in order, and (Line) each is the line of
        /// that sequence number, (Raw, Wait) their bytes are a prefix of the stream sent; (4) every
        /// Stop and Disconnect returned within its timeout plus the slack, and one that said
        /// graceful reset nobody.
        /// </summary>
        private static void CheckRound(bool raw, bool relay, QueueFullMode mode, List<Client> clients, Consumer consumer,
            List<TcpConnection> accepted, List<(string What, bool Graceful, TimeSpan Took, TimeSpan Timeout, TcpConnection Connection)> results,
            TimeSpan slack, List<string> log)
        {
            foreach (var r in results)
            {
                if (r.What == "Abort") continue;
                log.Add($"{r.What} {(r.Graceful ? "graceful" : "reset")} in {r.Took.TotalMilliseconds:0} ms");
                Check(r.Took <= r.Timeout + slack, $"{r.What} took {r.Took.TotalMilliseconds:0} ms, over its {r.Timeout.TotalMilliseconds:0} ms timeout + {slack.TotalMilliseconds:0} ms");
            }

            var byPort = clients.ToDictionary(c => c.LocalPort);
            foreach (var client in clients)
            {
                var sent = client.Sent;
                var got = client.Received;
                Check(got.Length <= sent.Length && sent.AsSpan(0, got.Length).SequenceEqual(got),
                    $"client {client.LocalPort} ({client.Kind}) got back {got.Length} byte(s) that are not a prefix of the {sent.Length} it sent (first difference at {FirstDifference(sent, got)})");
            }

            bool stopGraceful = results.Where(r => r.What == "Stop").All(r => r.Graceful);
            foreach (var client in clients)
            {
                if (client.Kind == ClientKind.Reset || client.Aborted) continue;
                if (results.Any(r => r.What == "Abort" && ((System.Net.IPEndPoint)r.Connection.RemoteEndPoint).Port == client.LocalPort)) continue;
                var disconnected = results.FirstOrDefault(r => r.What == "Disconnect" && ((System.Net.IPEndPoint)r.Connection.RemoteEndPoint).Port == client.LocalPort);
                bool saidGraceful = disconnected.Connection != null ? disconnected.Graceful : stopGraceful;
                Check(!client.SawReset || !saidGraceful,
                    $"client {client.LocalPort} ({client.Kind}) was reset while the close said graceful");
            }

            var origins = new HashSet<TcpConnection>(accepted);
            foreach (var origin in consumer.ByOrigin.Keys) origins.Add(origin);
            foreach (var origin in origins)
            {
                var messages = consumer.ByOrigin.TryGetValue(origin, out var list) ? list : new List<TcpMessage>();
                Check(origin.MessagesReceived == messages.Count + origin.MessagesDropped,
                    $"connection {origin.Id} ({origin.Direction}): received {origin.MessagesReceived} != consumed {messages.Count} + dropped {origin.MessagesDropped}");
                for (int i = 1; i < messages.Count; i++)
                {
                    Check(messages[i].Sequence > messages[i - 1].Sequence, $"connection {origin.Id}: sequence {messages[i].Sequence} after {messages[i - 1].Sequence}");
                }

                if (origin.Direction == MessageDirection.TargetToClient) continue;
                if (!byPort.TryGetValue(((System.Net.IPEndPoint)origin.RemoteEndPoint).Port, out var client)) continue;
                if (!raw)
                {
                    for (int i = 0; i < messages.Count; i++)
                    {
                        var message = messages[i];
                        var line = client.Line(message.Sequence);
                        // The last may be the start of a line the client cut short when the server
                        // closed (an unterminated final message is a message).
                        bool last = i == messages.Count - 1 && origin.MessagesReceived == message.Sequence;
                        Check(line != null && (line.AsSpan().SequenceEqual(message.Data) || (last && line.AsSpan().StartsWith(message.Data))),
                            $"connection {origin.Id} ({origin.Direction}): message {message.Sequence} ({message.Length} B, '{Preview(message.Data)}') is not line {message.Sequence} the client sent ({line?.Length} B, '{Preview(line)}')");
                    }
                }
                else if (origin.MessagesDropped == 0)
                {
                    var stream = messages.SelectMany(m => m.Data).ToArray();
                    var sent = client.Sent;
                    Check(stream.Length <= sent.Length && sent.AsSpan(0, stream.Length).SequenceEqual(stream),
                        $"connection {origin.Id}: the {stream.Length} byte(s) queued are not a prefix of the stream sent");
                }
            }
        }

        private static string Preview(byte[] data) =>
            data == null ? "none" : System.Text.Encoding.ASCII.GetString(data, 0, Math.Min(data.Length, 40));

        private static int FirstDifference(byte[] a, byte[] b)
        {
            int n = Math.Min(a.Length, b.Length);
            for (int i = 0; i < n; i++)
            {
                if (a[i] != b[i]) return i;
            }

            return n;
        }

        private static void Check(bool condition, string what)
        {
            if (!condition) throw new Xunit.Sdk.XunitException(what);
        }

        /// <summary>Takes the server's messages, now and then pausing, until the queue completes.</summary>
        private sealed class Consumer
        {
            private readonly MessageQueue _queue;
            private readonly Random _random;

            public Consumer(MessageQueue queue, Random random)
            {
                _queue = queue;
                _random = random;
            }

            public Dictionary<TcpConnection, List<TcpMessage>> ByOrigin { get; } = new Dictionary<TcpConnection, List<TcpMessage>>();

            public async Task RunAsync()
            {
                int pauseEvery = _random.Next(50, 2000);
                int taken = 0;
                while (await _queue.WaitToReadAsync())
                {
                    while (_queue.TryRead(out var message))
                    {
                        if (!ByOrigin.TryGetValue(message.Origin, out var list)) ByOrigin[message.Origin] = list = new List<TcpMessage>();
                        list.Add(message);
                        if (++taken % pauseEvery == 0) await Task.Delay(_random.Next(1, 30));
                    }
                }
            }
        }

        /// <summary>A raw socket client: sends its payload in its own way and reads back what comes until the end.</summary>
        private sealed class Client : IDisposable
        {
            private readonly Socket _socket;
            private readonly bool _raw;
            private readonly Random _random;
            private readonly MemoryStream _sent = new MemoryStream();
            private readonly MemoryStream _received = new MemoryStream();
            private readonly List<byte[]> _lines = new List<byte[]>();
            private volatile bool _ended;

            private Client(Socket socket, ClientKind kind, bool raw, Random random)
            {
                _socket = socket;
                Kind = kind;
                _raw = raw;
                _random = random;
                LocalPort = ((IPEndPoint)socket.LocalEndPoint).Port;
            }

            public ClientKind Kind { get; }

            public int LocalPort { get; }

            public bool SawReset { get; private set; }

            /// <summary>This client reset its own connection.</summary>
            public bool Aborted { get; private set; }

            public byte[] Sent
            {
                get { lock (_sent) return _sent.ToArray(); }
            }

            public byte[] Received
            {
                get { lock (_received) return _received.ToArray(); }
            }

            /// <summary>The line of this sequence number (1-based), terminator excluded.</summary>
            public byte[] Line(long sequence)
            {
                lock (_sent) return sequence >= 1 && sequence <= _lines.Count ? _lines[(int)sequence - 1] : null;
            }

            public static async Task<Client> ConnectAsync(int port, ClientKind kind, bool raw, Random random)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
                    return new Client(socket, kind, raw, random);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }

            public async Task RunAsync()
            {
                var reading = ReadAsync();
                try
                {
                    await SendAsync();
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
                {
                    // The server closed or reset: the reader says which.
                }

                await reading;
            }

            private byte[] NextPiece()
            {
                if (_raw)
                {
                    var piece = new byte[_random.Next(1, Kind == ClientKind.Dribble ? 6 : 3000)];
                    _random.NextBytes(piece);
                    return piece;
                }

                // A line of printable bytes (no terminator inside), then \n.
                var line = new byte[_random.Next(0, Kind == ClientKind.Dribble ? 20 : 300)];
                for (int i = 0; i < line.Length; i++) line[i] = (byte)_random.Next(0x20, 0x7F);
                lock (_sent) _lines.Add(line);
                var framed = new byte[line.Length + 1];
                line.CopyTo(framed, 0);
                framed[line.Length] = (byte)'\n';
                return framed;
            }

            private async Task SendAsync()
            {
                int pieces = Kind == ClientKind.Flood ? _random.Next(100, 3000) : _random.Next(10, 200);
                int resetAt = Kind == ClientKind.Reset ? _random.Next(0, pieces) : -1;
                for (int i = 0; i < pieces && !_ended; i++)
                {
                    if (i == resetAt)
                    {
                        Aborted = true;
                        _socket.LingerState = new LingerOption(true, 0);
                        _socket.Close();
                        return;
                    }

                    var piece = NextPiece();
                    int offset = 0;
                    while (offset < piece.Length && !_ended)
                    {
                        // Dribbles go a few bytes at a time, with pauses; floods in large writes.
                        int n = Kind == ClientKind.Dribble ? Math.Min(piece.Length - offset, _random.Next(1, 4)) : piece.Length - offset;
                        int sent = await _socket.SendAsync(new ArraySegment<byte>(piece, offset, n), SocketFlags.None);
                        lock (_sent) _sent.Write(piece, offset, sent);
                        offset += sent;
                        if (Kind == ClientKind.Dribble && _random.Next(4) == 0) await Task.Delay(1);
                    }
                }

                // Done (or the server ended): FIN, and the reader reads to the end.
                try { _socket.Shutdown(SocketShutdown.Send); } catch (SocketException) { }
            }

            private async Task ReadAsync()
            {
                var buffer = new byte[16 * 1024];
                try
                {
                    while (true)
                    {
                        int n = await _socket.ReceiveAsync(new ArraySegment<byte>(buffer), SocketFlags.None);
                        if (n == 0) break;
                        lock (_received) _received.Write(buffer, 0, n);
                    }
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset || e.SocketErrorCode == SocketError.ConnectionAborted)
                {
                    if (!Aborted) SawReset = true;
                }
                catch (Exception e) when (e is SocketException || e is ObjectDisposedException)
                {
                    // Our own reset closed the socket.
                }
                finally
                {
                    _ended = true;
                }
            }

            public void Dispose() => _socket.Dispose();
        }
    }
}

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>
    /// Issue 19's close cases (1, 6, 8, 9) in the core, and the graceful close's promise (SPEC
    /// "Guarantees", first bullet): stop taking new work, finish sending, shut down the send side,
    /// read (and queue) until the peer's FIN or the timeout, then close; reset only at the timeout,
    /// and say so (false, <see cref="TcpConnection.WasReset"/>).
    /// </summary>
    public class CloseGuaranteeTests
    {
        /// <summary>The slack a close may take past its timeout (SPEC: a small constant); generous for a busy 2-core CI.</summary>
        private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(600);

        private static byte[] Line(int client, int n) => Encoding.ASCII.GetBytes($"{client:D2}:{n:D8}\n");

        /// <summary>Sends until <paramref name="stop"/> is cancelled or the socket fails; returns how many lines went out.</summary>
        private static async Task<int> FloodAsync(Socket socket, int client, CancellationToken stop, long[] progress = null)
        {
            int n = 0;
            var batch = new List<byte>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    batch.Clear();
                    for (int i = 0; i < 64; i++) batch.AddRange(Line(client, n + i));
                    var data = batch.ToArray();
                    int offset = 0;
                    while (offset < data.Length)
                    {
                        offset += await socket.SendAsync(data.AsMemory(offset), SocketFlags.None, stop);
                    }

                    n += 64;
                    if (progress != null) Volatile.Write(ref progress[client], Stopwatch.GetTimestamp());
                    // Sends that complete at once never yield: let the other clients' loops run.
                    await Task.Yield();
                }
            }
            catch (Exception e) when (e is OperationCanceledException || e is SocketException || e is ObjectDisposedException)
            {
            }

            return n;
        }

        /// <summary>
        /// Sends 64 KiB chunks until a send has been pending for <paramref name="stuckFor"/>: the
        /// peer's side has stopped reading and every buffer on the way is full.
        /// </summary>
        private static async Task FillUntilStuckAsync(Socket socket, TimeSpan stuckFor)
        {
            var chunk = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(new string('x', 1023) + "\n", 64)));
            var limit = Stopwatch.StartNew();
            while (true)
            {
                var send = socket.SendAsync(chunk.AsMemory(), SocketFlags.None).AsTask();
                if (await Task.WhenAny(send, Task.Delay(stuckFor)) != send)
                {
                    // Stuck: leave the send pending (it fails when the socket closes).
                    _ = send.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                    return;
                }

                await send;
                if (limit.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("the sends never got stuck");
            }
        }

        // ---- Case 1 ----

        [Fact]
        public async Task StopDoesNotDestroyEchoesAlreadySent()
        {
            const int Clients = 40;
            await using var server = new EchoServer(o => o.QueueMessages = false);
            // Small buffers on the server's side too (accepted sockets inherit the listener's):
            // the clients' sends get stuck after kilobytes, not megabytes.
            var listener = (Socket)typeof(TcpServer).GetField("_listener", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance).GetValue(server.Server);
            listener.ReceiveBufferSize = 16384;
            listener.SendBufferSize = 16384;
            var sockets = new List<RawClient>();
            try
            {
                for (int i = 0; i < Clients; i++)
                {
                    // Small buffers: at the stop, echoes are still in flight in the server's send buffer.
                    var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
                    sockets.Add(RawClient.Wrap(await ConnectRawAsync(socket, server.Port)));
                }

                await Poll.UntilAsync(() => server.Server.ConnectionCount == Clients, "all clients accepted");
                var serverSide = server.Server.Connections.ToDictionary(c => ((IPEndPoint)c.RemoteEndPoint).Port);

                using var stopFlood = new CancellationTokenSource();
                var progress = new long[Clients];
                var floods = sockets.Select((s, i) => Task.Run(() => FloodAsync(s.Socket, i, stopFlood.Token, progress))).ToList();
                // The clients don't read yet: echoes back up in the server's send buffers and its
                // echo sends get stuck, with the clients' input still arriving behind them.
                await Poll.UntilAsync(() => serverSide.Values.All(c => c.MessagesSent > 200), "every client got echoes");
                // Every client's sends stuck for half a second: the server's echoes are stuck too.
                await Poll.UntilAsync(() => progress.All(p => Stopwatch.GetElapsedTime(Volatile.Read(ref p)) > TimeSpan.FromMilliseconds(500)), "the clients' sends stuck", TimeSpan.FromSeconds(30));
                var stop = server.Server.StopAsync(TimeSpan.FromSeconds(10));
                // Now each client reads everything until the server's FIN, then stops sending and closes (a polite client).
                var reads = sockets.Select(s => Task.Run(() => s.ReadToEndAsync(TimeSpan.FromSeconds(30)))).ToList();
                var results = await Poll.WithTimeout(Task.WhenAll(reads), "clients reading to the end", TimeSpan.FromSeconds(30));
                stopFlood.Cancel();
                await Task.WhenAll(floods);
                foreach (var s in sockets) s.Socket.Shutdown(SocketShutdown.Send);
                Assert.True(await Poll.WithTimeout(stop, "the stop", TimeSpan.FromSeconds(15)), "the stop must be graceful: every client closed");

                for (int i = 0; i < Clients; i++)
                {
                    var (data, end) = results[i];
                    var connection = serverSide[((IPEndPoint)sockets[i].Socket.LocalEndPoint).Port];
                    Assert.True(end == EndKind.Eof, $"client {i} was reset after {data.Length:N0} bytes (server sent {connection.MessagesSent:N0} echoes)");
                    int lineLength = Line(i, 0).Length;
                    Assert.Equal(0, data.Length % lineLength);
                    int lines = data.Length / lineLength;
                    Assert.Equal(connection.MessagesSent, lines);
                    for (int n = 0; n < lines; n++)
                    {
                        if (!data.AsSpan(n * lineLength, lineLength).SequenceEqual(Line(i, n)))
                        {
                            Assert.Fail($"client {i}: echo {n} differs from what it sent");
                        }
                    }

                    Assert.False(connection.WasReset);
                }
            }
            finally
            {
                foreach (var s in sockets) s.Dispose();
            }
        }

        // ---- Case 6 ----

        [Fact]
        public async Task LinesArrivingDuringACloseAreQueued()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("first\n");
            Assert.Equal("first", (await server.TakeAsync(1)).Single().Text);
            Assert.Equal("first\n", await client.ReadLineTextAsync());
            var connection = server.Server.Connections.Single();

            var close = connection.CloseAsync(TimeSpan.FromSeconds(10));
            // The server's FIN: then the client still has things to say before it closes too.
            await Poll.UntilAsync(() => client.Socket.Poll(0, SelectMode.SelectRead), "the server's FIN");
            await client.SendAsync("second\nthird\n");
            // Only then the client's FIN: the lines came while the server was closing.
            await Poll.UntilAsync(() => connection.MessagesReceived == 3, "the late lines read");
            client.Socket.Shutdown(SocketShutdown.Send);

            Assert.True(await Poll.WithTimeout(close, "the close"), "a close the peer answered with FIN is graceful");
            Assert.False(connection.WasReset);
            var late = await server.TakeAsync(2);
            Assert.Equal(new[] { "second", "third" }, late.Select(m => m.Text));
            Assert.Equal(0, connection.MessagesDropped);
            Assert.Equal(0, server.Queue.DroppedCount);
            // Nothing is echoed after the FIN: the client reads its end.
            var (data, end) = await client.ReadToEndAsync();
            Assert.Empty(data);
            Assert.Equal(EndKind.Eof, end);
        }

        // ---- Case 8 ----

        [Fact]
        public async Task RelayWhoseTargetStopsReadingStopsWithinItsTimeout()
        {
            var target = new TcpListener(IPAddress.Loopback, 0);
            target.Server.ReceiveBufferSize = 8192;
            target.Start();
            Socket accepted = null;
            try
            {
                var handler = new RelayHandler("127.0.0.1", ((IPEndPoint)target.LocalEndpoint).Port, new ConnectionOptions(), TimeSpan.FromSeconds(5), queueMessages: true);
                var relay = new EchoServer(o => o.AcceptedDirection = MessageDirection.ClientToTarget, handler);
                using var client = await relay.ConnectAsync();
                client.Socket.SendBufferSize = 8192;
                accepted = await target.AcceptSocketAsync();
                // The target never reads: the relay's forwarding gets stuck, then the client's sends.
                await FillUntilStuckAsync(client.Socket, TimeSpan.FromMilliseconds(500));
                var targetSide = handler.TargetConnections.Single();
                var clientSide = relay.Server.Connections.Single();

                var clock = Stopwatch.StartNew();
                bool graceful = await Poll.WithTimeout(relay.Server.StopAsync(TimeSpan.FromSeconds(1)), "the relay's stop", TimeSpan.FromSeconds(10));
                var took = clock.Elapsed;
                Assert.False(graceful, "a stop that had to reset says so");
                Assert.True(took < TimeSpan.FromSeconds(1) + Slack, $"the stop took {took.TotalMilliseconds:0} ms");
                Assert.Equal(ServerState.Stopped, relay.Server.State);
                Assert.Equal(ConnectionState.Closed, clientSide.State);
                Assert.True(clientSide.WasReset);
                await Poll.UntilAsync(() => targetSide.State == ConnectionState.Closed, "the target side closed", TimeSpan.FromSeconds(1));
                Assert.True(targetSide.WasReset);
                Assert.True(relay.Queue.IsCompleted, "the relay's queue completes, so its consumers end");
            }
            finally
            {
                accepted?.Dispose();
                target.Stop();
            }
        }

        // ---- Case 9 ----

        [Fact]
        public async Task DisconnectWhileASendIsStuckResetsAndSaysSo()
        {
            await using var server = new EchoServer(o => o.QueueMessages = false);
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 8192, SendBufferSize = 8192 };
            using var client = await ConnectRawAsync(socket, server.Port);
            // The client never reads its echoes: the server's echo send gets stuck, then the client's sends.
            await FillUntilStuckAsync(client, TimeSpan.FromMilliseconds(500));
            var connection = server.Server.Connections.Single();

            var clock = Stopwatch.StartNew();
            bool graceful = await Poll.WithTimeout(connection.CloseAsync(TimeSpan.FromSeconds(1)), "the close");
            var took = clock.Elapsed;
            Assert.False(graceful, "a close that had to reset says so");
            Assert.True(connection.WasReset);
            Assert.True(took >= TimeSpan.FromMilliseconds(900), $"the close reset early, after {took.TotalMilliseconds:0} ms");
            Assert.True(took < TimeSpan.FromSeconds(1) + Slack, $"the close took {took.TotalMilliseconds:0} ms");
            await Poll.WithTimeout(connection.Completion, "the reset connection's end");
            Assert.Equal(ConnectionState.Closed, connection.State);
        }

        private static async Task<Socket> ConnectRawAsync(Socket socket, int port)
        {
            using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
            return socket;
        }

        // ---- The close itself ----

        [Fact]
        public async Task CloseResetsOnlyAtTheTimeoutAndSaysSo()
        {
            await using var server = new EchoServer();
            using var silent = await server.ConnectAsync();
            using var polite = await server.ConnectAsync();
            await silent.SendAsync("silent\n");
            await polite.SendAsync("polite\n");
            await server.TakeAsync(2);
            var connections = server.Server.Connections;
            var silentSide = connections.Single(c => ((IPEndPoint)c.RemoteEndPoint).Port == ((IPEndPoint)silent.Socket.LocalEndPoint).Port);
            var politeSide = connections.Single(c => c != silentSide);

            // A peer that closes when it reads the end: graceful, no reset, quick.
            var politeReads = Task.Run(async () =>
            {
                var result = await polite.ReadToEndAsync();
                polite.Socket.Shutdown(SocketShutdown.Send);
                return result;
            });
            var clock = Stopwatch.StartNew();
            Assert.True(await Poll.WithTimeout(politeSide.CloseAsync(TimeSpan.FromSeconds(5)), "the polite close"));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"the polite close took {clock.ElapsedMilliseconds} ms");
            Assert.False(politeSide.WasReset);
            Assert.Equal(ConnectionState.Closed, politeSide.State);
            var (politeData, politeEnd) = await politeReads;
            Assert.Equal("polite\n", Encoding.ASCII.GetString(politeData));
            Assert.Equal(EndKind.Eof, politeEnd);

            // A peer that never sends FIN: reset at the timeout, not before, and said so.
            clock.Restart();
            Assert.False(await Poll.WithTimeout(silentSide.CloseAsync(TimeSpan.FromMilliseconds(700)), "the silent close"));
            var took = clock.Elapsed;
            Assert.True(took >= TimeSpan.FromMilliseconds(650), $"reset early, after {took.TotalMilliseconds:0} ms");
            Assert.True(took < TimeSpan.FromMilliseconds(700) + Slack, $"the close took {took.TotalMilliseconds:0} ms");
            Assert.True(silentSide.WasReset);

            // The reset ends the connection; CloseAsync waits at most 200 ms for its loop to
            // finish (a busy two-core runner can take longer), so wait for the end itself.
            await Poll.WithTimeout(silentSide.Completion, "the reset connection's end");
            Assert.Equal(ConnectionState.Closed, silentSide.State);
        }
    }
}

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
    public class EchoServerTests
    {
        private static readonly Encoding Utf8 = Bytes.Utf8;

        [Fact]
        public async Task PortZeroReportsTheRealPort()
        {
            await using var server = new EchoServer();
            Assert.NotEqual(0, server.Port);
            Assert.Equal(ServerState.Running, server.Server.State);
            using var client = await server.ConnectAsync();
            await client.SendAsync("hi\n");
            Assert.Equal("hi\n", await client.ReadLineTextAsync());
        }

        [Fact]
        public async Task EchoIsByteExactAndTextDecodesInvalidUtf8AsReplacement()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();

            var lines = new[]
            {
                Bytes.Latin1("crlf\r\n"),
                Bytes.Latin1("lf\n"),
                new byte[] { 0xC0, 0x80, (byte)'\n' },           // overlong NUL
                new byte[] { 0xED, 0xA0, 0x80, (byte)'\r', (byte)'\n' }, // UTF-16 surrogate
                new byte[] { 0xFF, (byte)'\n' },
                new byte[] { (byte)'a', 0, (byte)'b', 0, (byte)'\n' },
                Bytes.Latin1("\n"),
                Bytes.Latin1("\r\n"),
                Utf8.GetBytes("h\u00e9llo \u20ac \U0001F600\n"),
            };
            var payload = Bytes.Concat(lines);
            await client.SendAsync(payload);

            Assert.Equal(payload, await client.ReadExactlyAsync(payload.Length));

            var messages = await server.TakeAsync(lines.Length);
            for (int i = 0; i < lines.Length; i++)
            {
                var raw = lines[i];
                int cut = raw.Length >= 2 && raw[raw.Length - 2] == '\r' ? 2 : 1;
                var expected = raw.Take(raw.Length - cut).ToArray();
                Assert.Equal(expected, messages[i].Data);
                Assert.Equal(Utf8.GetString(expected), messages[i].Text);
                Assert.Equal(i + 1, messages[i].Sequence);
            }

            Assert.Equal("\uFFFD\uFFFD", messages[2].Text);
            Assert.True(messages[3].Text.Length > 0 && messages[3].Text.All(c => c == '\uFFFD'), messages[3].Text);
            Assert.Equal("\uFFFD", messages[4].Text);
            Assert.Equal("a\0b\0", messages[5].Text);
            Assert.Equal("", messages[6].Text);
            Assert.Equal("", messages[7].Text);
            Assert.Equal("h\u00e9llo \u20ac \U0001F600", messages[8].Text);
            Assert.All(messages, m => Assert.Equal(server.Server.Name, m.Source));
        }

        [Fact]
        public async Task MultibyteCharacterSplitAcrossWritesDecodesLikeUnsplit()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            var line = Utf8.GetBytes("x\u20acy\U0001F600z\n"); // € = E2 82 AC, 😀 = F0 9F 98 80
            int[] cuts = { 3, 7 };                                 // after E2 82, after F0 9F 98

            int sent = 0;
            foreach (var cut in cuts.Append(line.Length))
            {
                await client.SendAsync(line.AsSpan(sent, cut - sent).ToArray());
                sent = cut;
                // Make sure the server has read each part on its own before the next one.
                await Poll.UntilAsync(() => server.Server.BytesReceived >= sent, $"server read {sent} bytes");
            }

            Assert.Equal(line, await client.ReadExactlyAsync(line.Length));
            var message = (await server.TakeAsync(1)).Single();
            Assert.Equal("x\u20acy\U0001F600z", message.Text);
            Assert.DoesNotContain('\uFFFD', message.Text);
        }

        [Fact]
        public async Task TenThousandLinesInOneWrite()
        {
            const int count = 10000;
            await using var server = new EchoServer(o => o.QueueCapacity = count);
            using var client = await server.ConnectAsync();
            var payload = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(1, count).Select(i => $"line {i}\n")));

            var echo = client.ReadExactlyAsync(payload.Length);
            await client.SendAsync(payload);
            Assert.Equal(payload, await echo);

            var messages = await server.TakeAsync(count);
            for (int i = 0; i < count; i++)
            {
                Assert.Equal(i + 1, messages[i].Sequence);
                Assert.Equal($"line {i + 1}", messages[i].Text);
            }

            Assert.Single(messages.Select(m => m.ConnectionId).Distinct());
            Assert.Equal(count, server.Server.MessagesReceived);
            Assert.Equal(payload.Length, server.Server.BytesReceived);
            Assert.Equal(0, server.Server.MessagesDropped);
        }

        [Fact]
        public async Task HalfCloseDeliversTheFinalFragmentThenEof()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("ping\nfinal fragment");
            client.Socket.Shutdown(SocketShutdown.Send);

            var (data, end) = await client.ReadToEndAsync();
            Assert.Equal("ping\nfinal fragment", Encoding.Latin1.GetString(data));
            Assert.Equal(EndKind.Eof, end);

            var messages = await server.TakeAsync(2);
            Assert.Equal(new[] { "ping", "final fragment" }, messages.Select(m => m.Text));
            Assert.Equal(new long[] { 1, 2 }, messages.Select(m => m.Sequence));
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "connection gone");
            Assert.Equal(0, server.Server.QueueLength);
            Assert.Equal(0, server.Server.ErrorCount);
        }

        [Fact]
        public async Task HalfCloseAfterACompleteLineQueuesItOnce()
        {
            await using var server = new EchoServer();
            using var client = await server.ConnectAsync();
            await client.SendAsync("ping\n");
            client.Socket.Shutdown(SocketShutdown.Send);

            var (data, end) = await client.ReadToEndAsync();
            Assert.Equal("ping\n", Encoding.Latin1.GetString(data));
            Assert.Equal(EndKind.Eof, end);
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "connection gone");
            Assert.Equal(1, server.Server.QueueLength);
            Assert.Equal("ping", (await server.TakeAsync(1)).Single().Text);
        }

        [Fact]
        public async Task ThousandConcurrentConnectionsAllEcho()
        {
            const int count = 1000;
            await using var server = new EchoServer();
            var clients = new RawClient[count];
            try
            {
                // Connect in waves so the listen backlog never overflows (a dropped SYN costs 1 s).
                using (var gate = new SemaphoreSlim(64))
                {
                    await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
                    {
                        await gate.WaitAsync();
                        try { clients[i] = await server.ConnectAsync(); }
                        finally { gate.Release(); }
                    }));
                }

                await Poll.UntilAsync(() => server.Server.ConnectionCount == count, $"{count} connections accepted");

                await Task.WhenAll(clients.Select(async (client, i) =>
                {
                    var line = $"client {i} says hello\n";
                    await client.SendAsync(line);
                    Assert.Equal(line, await client.ReadLineTextAsync(TimeSpan.FromSeconds(20)));
                }));

                var messages = await server.TakeAsync(count);
                Assert.Equal(count, messages.Select(m => m.ConnectionId).Distinct().Count());
                Assert.Equal(Enumerable.Range(0, count).Select(i => $"client {i} says hello").OrderBy(s => s),
                    messages.Select(m => m.Text).OrderBy(s => s));
                Assert.Equal(count, server.Server.TotalConnections);
                Assert.Equal(0, server.Server.ConnectionsRefused);
            }
            finally
            {
                foreach (var client in clients) client?.Dispose();
            }

            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "all connections closed");
            Assert.Equal(0, server.Server.ErrorCount);
        }

        [Fact]
        public async Task SlowClientDoesNotDelayAnother()
        {
            await using var server = new EchoServer();
            using var slow = await server.ConnectAsync();
            using var fast = await server.ConnectAsync();
            var slowLine = Bytes.Latin1("one byte at a time!\n"); // 20 bytes
            var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var fastDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            var slowTask = Task.Run(async () =>
            {
                for (int i = 0; i < slowLine.Length; i++)
                {
                    if (i == slowLine.Length / 2)
                    {
                        halfway.SetResult();
                        await Poll.WithTimeout(fastDone.Task, "fast client");
                    }

                    await slow.SendAsync(new[] { slowLine[i] });
                    await Task.Delay(5); // pacing: each byte in its own segment
                }

                return await slow.ReadLineAsync();
            });

            await Poll.WithTimeout(halfway.Task, "slow client halfway");
            // The slow client's half line is sitting in the server now.
            await Poll.UntilAsync(() => server.Server.BytesReceived >= slowLine.Length / 2, "server read the half line");
            for (int i = 0; i < 10; i++)
            {
                await fast.SendAsync($"fast {i}\n");
                Assert.Equal($"fast {i}\n", await fast.ReadLineTextAsync(TimeSpan.FromSeconds(5)));
            }

            Assert.False(slowTask.IsCompleted);
            fastDone.SetResult();
            Assert.Equal(slowLine, await Poll.WithTimeout(slowTask, "slow client's echo"));
        }

        [Fact]
        public async Task LineOverTheLimitClosesOnlyThatConnection()
        {
            const int limit = 100;
            await using var server = new EchoServer(o => o.MaxLineLength = limit);
            var reported = new List<TcpErrorEventArgs>();
            server.Server.ErrorReported += (_, e) => { lock (reported) reported.Add(e); };
            using var bystander = await server.ConnectAsync();
            await bystander.SendAsync("before\n");
            Assert.Equal("before\n", await bystander.ReadLineTextAsync());

            using var offender = await server.ConnectAsync();
            await offender.SendAsync("fine\n" + new string('x', limit + 1));
            Assert.Equal("fine\n", await offender.ReadLineTextAsync());
            await offender.SendAsync(new string('y', 1000));
            var (rest, _) = await offender.ReadToEndAsync();
            Assert.Empty(rest);

            await Poll.UntilAsync(() => server.Server.ErrorCount == 1, "error recorded");
            Assert.Equal(TcpErrorKind.LineTooLong, server.Server.LastError.Kind);
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 1, "offender removed");
            lock (reported)
            {
                var e = Assert.Single(reported);
                Assert.Equal(TcpErrorKind.LineTooLong, e.Error.Kind);
            }

            await bystander.SendAsync("after\n");
            Assert.Equal("after\n", await bystander.ReadLineTextAsync());
            var texts = (await server.TakeAsync(3)).Select(m => m.Text).ToList();
            Assert.Equal(new[] { "before", "fine", "after" }, texts);
            Assert.Equal(0, server.Server.QueueLength);
            Assert.Equal(1, server.Server.ErrorCount);
        }

        [Theory]
        [InlineData("\n")]
        [InlineData("\r\n")]
        public async Task ExactlyTheLimitIsAcceptedAndOneMoreIsNot(string terminator)
        {
            const int limit = 100;
            await using var server = new EchoServer(o => o.MaxLineLength = limit);
            using var client = await server.ConnectAsync();
            var line = new string('a', limit) + terminator;
            await client.SendAsync(line);
            Assert.Equal(line, await client.ReadLineTextAsync());
            var message = (await server.TakeAsync(1)).Single();
            Assert.Equal(limit, message.Data.Length);

            using var over = await server.ConnectAsync();
            await over.SendAsync(new string('b', limit + 1) + terminator);
            var (rest, _) = await over.ReadToEndAsync();
            Assert.Empty(rest);
            await Poll.UntilAsync(() => server.Server.ErrorCount == 1, "error recorded");
            Assert.Equal(TcpErrorKind.LineTooLong, server.Server.LastError.Kind);

            // The first connection is still served.
            await client.SendAsync("still here\n");
            Assert.Equal("still here\n", await client.ReadLineTextAsync());
        }

        [Fact]
        public async Task FinalFragmentOverTheLimitIsAnError()
        {
            const int limit = 10;
            await using var server = new EchoServer(o => o.MaxLineLength = limit);
            using var client = await server.ConnectAsync();
            await client.SendAsync(new string('z', limit + 1));
            client.Socket.Shutdown(SocketShutdown.Send);
            var (rest, _) = await client.ReadToEndAsync();
            Assert.Empty(rest);
            await Poll.UntilAsync(() => server.Server.ErrorCount == 1, "error recorded");
            Assert.Equal(TcpErrorKind.LineTooLong, server.Server.LastError.Kind);
            Assert.Equal(0, server.Server.QueueLength);
        }

        [Fact]
        public async Task TenMegabyteFloodWithoutLfIsCutEarly()
        {
            const int limit = 1024;
            const int flood = 10 * 1024 * 1024;
            await using var server = new EchoServer(o => o.MaxLineLength = limit);
            using var bystander = await server.ConnectAsync();
            using var client = await server.ConnectAsync();

            var chunk = Enumerable.Repeat((byte)'a', 64 * 1024).ToArray();
            long sent = 0;
            Exception sendError = null;
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
            {
                try
                {
                    while (sent < flood)
                    {
                        sent += await client.Socket.SendAsync(chunk, SocketFlags.None, cts.Token);
                    }
                }
                catch (SocketException e)
                {
                    sendError = e;
                }
            }

            await Poll.UntilAsync(() => server.Server.ErrorCount == 1, "error recorded");
            Assert.Equal(TcpErrorKind.LineTooLong, server.Server.LastError.Kind);
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 1, "flooder closed");

            // Memory is bounded by what was read before the limit tripped, not by the flood.
            Assert.True(server.Server.BytesReceived < 1024 * 1024, $"server read {server.Server.BytesReceived} bytes");
            if (sendError == null)
            {
                // The kernel took it all into buffers; the connection must still be dead.
                var (_, end) = await client.ReadToEndAsync();
                Assert.True(end == EndKind.Reset || end == EndKind.Eof);
            }

            await bystander.SendAsync("ok\n");
            Assert.Equal("ok\n", await bystander.ReadLineTextAsync());
        }

        [Fact]
        public async Task MaxConnectionsRefusesTheRestAndCountsThem()
        {
            const int max = 3;
            await using var server = new EchoServer(o => o.MaxConnections = max);
            var served = new List<RawClient>();
            try
            {
                for (int i = 0; i < max; i++)
                {
                    var client = await server.ConnectAsync();
                    served.Add(client);
                    await client.SendAsync($"c{i}\n");
                    Assert.Equal($"c{i}\n", await client.ReadLineTextAsync());
                }

                Assert.Equal(max, server.Server.ConnectionCount);
                for (int extra = 1; extra <= 2; extra++)
                {
                    using var refused = await server.ConnectAsync();
                    var (data, _) = await refused.ReadToEndAsync(TimeSpan.FromSeconds(5));
                    Assert.Empty(data);
                    Assert.Equal(extra, server.Server.ConnectionsRefused);
                }

                Assert.Equal(max, server.Server.ConnectionCount);
                // The served ones are unaffected.
                await served[0].SendAsync("again\n");
                Assert.Equal("again\n", await served[0].ReadLineTextAsync());
            }
            finally
            {
                foreach (var client in served) client.Dispose();
            }

            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "count back to 0");

            // Room again: a new client is served.
            using var later = await server.ConnectAsync();
            await later.SendAsync("later\n");
            Assert.Equal("later\n", await later.ReadLineTextAsync());
            Assert.Equal(2, server.Server.ConnectionsRefused);
            Assert.Equal(max + 1, server.Server.TotalConnections);
        }

        [Fact]
        public async Task IdleTimeoutClosesSilentConnectionsButNotActiveOnes()
        {
            var timeout = TimeSpan.FromSeconds(1);
            await using var server = new EchoServer(o => o.IdleTimeout = timeout);
            using var silent = await server.ConnectAsync();
            var clock = Stopwatch.StartNew();
            using var active = await server.ConnectAsync();

            var activeTask = Task.Run(async () =>
            {
                // A short line every 300 ms for 1.5 s: never idle for the full second.
                for (int i = 0; i < 6; i++)
                {
                    await active.SendAsync($"beat {i}\n");
                    Assert.Equal($"beat {i}\n", await active.ReadLineTextAsync());
                    await Task.Delay(300); // pacing, not a wait for a condition
                }
            });

            var (data, _) = await silent.ReadToEndAsync(TimeSpan.FromSeconds(10));
            var closedAfter = clock.Elapsed;
            Assert.Empty(data);
            Assert.True(closedAfter >= TimeSpan.FromMilliseconds(900), $"closed after {closedAfter.TotalMilliseconds} ms");
            Assert.True(closedAfter < TimeSpan.FromSeconds(5), $"closed after {closedAfter.TotalMilliseconds} ms");

            await Poll.WithTimeout(activeTask, "active client");
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5));
            await active.SendAsync("still open\n");
            Assert.Equal("still open\n", await active.ReadLineTextAsync());
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 1, "only the active connection left");
        }

        [Fact]
        public async Task SlowlorisWithoutNewlineIsClosedByTheDeadline()
        {
            await using var server = new EchoServer(o => o.IdleTimeout = TimeSpan.FromSeconds(1));
            using var client = await server.ConnectAsync();
            var clock = Stopwatch.StartNew();
            bool closed = false;
            // One byte every 200 ms, never a newline, for at most 4 s.
            for (int i = 0; i < 20 && !closed; i++)
            {
                try
                {
                    await client.SendAsync("s");
                }
                catch (SocketException)
                {
                    closed = true;
                    break;
                }

                closed = !await client.StaysQuietAsync(TimeSpan.FromMilliseconds(200));
            }

            Assert.True(closed, $"still open after {clock.Elapsed.TotalSeconds:0.0} s of 1 byte / 200 ms with a 1 s idle timeout");
        }

        [Fact]
        public async Task PeerResetMidLineCostsOnlyThatConnection()
        {
            using var unobserved = new UnobservedExceptions();
            await using var server = new EchoServer();
            using (var client = await server.ConnectAsync())
            {
                await client.SendAsync("complete\npartial line");
                Assert.Equal("complete\n", await client.ReadLineTextAsync());
                await Poll.UntilAsync(() => server.Server.BytesReceived == "complete\npartial line".Length, "server read the partial line");
                client.Reset();
            }

            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "reset connection removed");
            // The partial line is dropped: the peer never finished it.
            Assert.Equal(1, server.Server.MessagesReceived);
            Assert.Equal("complete", (await server.TakeAsync(1)).Single().Text);
            Assert.Equal(0, server.Server.QueueLength);
            if (server.Server.ErrorCount > 0)
            {
                Assert.Equal(TcpErrorKind.ConnectionReset, server.Server.LastError.Kind);
            }

            using var next = await server.ConnectAsync();
            await next.SendAsync("next\n");
            Assert.Equal("next\n", await next.ReadLineTextAsync());
            Assert.Equal(ServerState.Running, server.Server.State);
            Assert.DoesNotContain(unobserved.Collect(), e => e.ToString().Contains("PSTcp"));
        }

        [Fact]
        public async Task PeerResetWhileTheServerEchoesCostsOnlyThatConnection()
        {
            using var unobserved = new UnobservedExceptions();
            await using var server = new EchoServer(o => o.QueueCapacity = 100);
            using (var client = await server.ConnectAsync())
            {
                // Never read the echoes, so the server's sends back up; then reset.
                var line = Bytes.Latin1(new string('e', 1000) + "\n");
                var payload = Bytes.Concat(Enumerable.Repeat(line, 4000).ToArray());
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                int offset = 0;
                var sending = Task.Run(async () =>
                {
                    try
                    {
                        while (offset < payload.Length)
                        {
                            offset += await client.Socket.SendAsync(payload.AsMemory(offset), SocketFlags.None, cts.Token);
                        }
                    }
                    catch (Exception e) when (e is SocketException || e is OperationCanceledException || e is ObjectDisposedException)
                    {
                    }
                });
                await Poll.UntilAsync(() => server.Server.MessagesReceived >= 100, "server echoing");
                client.Reset();
                await Poll.WithTimeout(sending, "sender ended");
            }

            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "reset connection removed");
            using var next = await server.ConnectAsync();
            await next.SendAsync("next\n");
            Assert.Equal("next\n", await next.ReadLineTextAsync());
            Assert.DoesNotContain(unobserved.Collect(), e => e.ToString().Contains("PSTcp"));
        }

        [Fact]
        public async Task PeerResetDuringEchoAccountsForEveryMessage()
        {
            await using var server = new EchoServer(o => o.QueueCapacity = 100);
            using (var client = await server.ConnectAsync())
            {
                // The client never reads, so the server's echo send ends up stuck with a batch in hand.
                client.Socket.ReceiveBufferSize = 4096;
                var payload = Bytes.Concat(Enumerable.Repeat(Bytes.Latin1(new string('e', 1000) + "\n"), 16000).ToArray());
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var sending = Task.Run(async () =>
                {
                    try
                    {
                        for (int offset = 0; offset < payload.Length;)
                        {
                            offset += await client.Socket.SendAsync(payload.AsMemory(offset), SocketFlags.None, cts.Token);
                        }
                    }
                    catch (Exception e) when (e is SocketException || e is OperationCanceledException || e is ObjectDisposedException)
                    {
                    }
                });

                // Stalled: no progress over a 200 ms window (bounded to 50 windows).
                long before = -1;
                for (int i = 0; i < 50 && server.Server.MessagesReceived != before; i++)
                {
                    before = server.Server.MessagesReceived;
                    await Task.Delay(200); // the sampling window of the stall check itself
                }

                Assert.True(server.Server.MessagesReceived == before, "the server never stalled");
                client.Reset();
                await Poll.WithTimeout(sending, "sender ended");
            }

            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "reset connection removed");
            var s = server.Server;
            Assert.True(s.MessagesReceived == s.QueueLength + s.MessagesDropped,
                $"received {s.MessagesReceived}, queued {s.QueueLength}, dropped {s.MessagesDropped}, last error {s.LastError?.Kind}");
        }

        [Fact]
        public async Task StopWithConnectedClientsQueuesWhatWasReadThenCompletes()
        {
            var server = new EchoServer();
            var clients = new List<RawClient>();
            long sentBytes = 0;
            try
            {
                for (int c = 0; c < 3; c++)
                {
                    var client = await server.ConnectAsync();
                    clients.Add(client);
                    var lines = string.Concat(Enumerable.Range(1, 5).Select(i => $"c{c} l{i}\n"));
                    await client.SendAsync(lines);
                    sentBytes += lines.Length;
                    Assert.Equal(lines, Encoding.Latin1.GetString(await client.ReadExactlyAsync(lines.Length)));
                }

                var idle = await server.ConnectAsync();
                clients.Add(idle);
                var partial = await server.ConnectAsync();
                clients.Add(partial);
                await partial.SendAsync("unfinished");
                sentBytes += "unfinished".Length;
                await Poll.UntilAsync(() => server.Server.ConnectionCount == 5 && server.Server.BytesReceived == sentBytes, "all connected and read");

                var stopped = server.Server.StopAsync();
                await Poll.WithTimeout(stopped, "stop", TimeSpan.FromSeconds(10));
                Assert.Equal(ServerState.Stopped, server.Server.State);
                Assert.Equal(0, server.Server.ConnectionCount);

                // Everything read was queued before the queue completed.
                var messages = await Queues.DrainToEndAsync(server.Queue);
                Assert.Equal(15, messages.Count);
                foreach (var group in messages.GroupBy(m => m.ConnectionId))
                {
                    Assert.Equal(Seq(1, 5), group.Select(m => m.Sequence));
                }

                Assert.True(server.Queue.IsCompleted);

                // Every client sees the end; those with nothing unread get a clean FIN.
                foreach (var client in clients)
                {
                    var (data, end) = await client.ReadToEndAsync(TimeSpan.FromSeconds(5));
                    Assert.Empty(data);
                    Assert.Equal(EndKind.Eof, end);
                }

                // The listener is closed.
                await Assert.ThrowsAsync<SocketException>(() => RawClient.ConnectAsync(server.Port));
            }
            finally
            {
                foreach (var client in clients) client.Dispose();
                await server.DisposeAsync();
            }
        }

        private static IEnumerable<long> Seq(int from, int count) => Enumerable.Range(from, count).Select(i => (long)i);

        [Fact]
        public async Task WaitModeBackpressurePausesEchoesAndLosesNothing()
        {
            const int capacity = 10;
            const int total = 500;
            await using var server = new EchoServer(o =>
            {
                o.QueueCapacity = capacity;
                o.QueueFullMode = QueueFullMode.Wait;
            });
            using var client = await server.ConnectAsync();

            // A batch is queued before it is echoed (issue 19 case 7): lines 1..capacity are
            // echoed; then the connection waits for room with line capacity+1 in hand, unechoed.
            for (int i = 1; i <= capacity; i++)
            {
                await client.SendAsync($"line {i}\n");
                Assert.Equal($"line {i}\n", await client.ReadLineTextAsync());
            }

            await Poll.UntilAsync(() => server.Server.QueueLength == capacity, "queue full");
            await client.SendAsync(string.Concat(Enumerable.Range(capacity + 1, total - capacity).Select(i => $"line {i}\n")));
            Assert.True(await client.StaysQuietAsync(TimeSpan.FromMilliseconds(300)), "echoes kept flowing with a full Wait-mode queue");
            Assert.Equal(capacity, server.Server.QueueLength);
            Assert.Equal(0, server.Server.MessagesDropped);

            // A consumer drains: everything resumes.
            var consumer = server.TakeAsync(total);
            for (int i = capacity + 1; i <= total; i++)
            {
                Assert.Equal($"line {i}\n", await client.ReadLineTextAsync());
            }

            var messages = await consumer;
            Assert.Equal(Seq(1, total), messages.Select(m => m.Sequence));
            Assert.Equal(Enumerable.Range(1, total).Select(i => $"line {i}"), messages.Select(m => m.Text));
            Assert.Equal(0, server.Server.MessagesDropped);
            Assert.Equal(total, server.Server.MessagesReceived);
        }

        [Fact]
        public async Task StopWhileBackpressuredAccountsForEveryMessage()
        {
            // Wait mode, nobody reading, stop times out and aborts the stuck connection:
            // every line the server took in must end up queued or counted as dropped.
            var server = new EchoServer(o =>
            {
                o.QueueCapacity = 10;
                o.QueueFullMode = QueueFullMode.Wait;
                o.StopTimeout = TimeSpan.FromMilliseconds(300);
            });
            try
            {
                using var client = await server.ConnectAsync();
                await client.SendAsync(string.Concat(Enumerable.Range(1, 50).Select(i => $"line {i}\n")));
                await Poll.UntilAsync(() => server.Server.QueueLength == 10 && server.Server.MessagesReceived > 10, "queue full");
                await Poll.WithTimeout(server.Server.StopAsync(), "stop", TimeSpan.FromSeconds(10));

                var queued = (await Queues.DrainToEndAsync(server.Queue)).Count;
                Assert.Equal(10, queued);
                Assert.True(server.Server.MessagesReceived == queued + server.Server.MessagesDropped,
                    $"received {server.Server.MessagesReceived}, queued {queued}, dropped {server.Server.MessagesDropped}");
            }
            finally
            {
                await server.DisposeAsync();
            }
        }

        [Fact]
        public async Task StopWhileAFloodIsPausedByBackpressureIsClean()
        {
            using var unobserved = new UnobservedExceptions();
            var server = new EchoServer(o =>
            {
                o.QueueCapacity = 10;
                o.QueueFullMode = QueueFullMode.Wait;
                o.StopTimeout = TimeSpan.FromMilliseconds(500);
            });
            using var client = await server.ConnectAsync();
            var line = Bytes.Latin1(new string('w', 99) + "\n");
            var chunk = Bytes.Concat(Enumerable.Repeat(line, 640).ToArray()); // 64 KB of lines
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            long sent = 0;
            var flooding = Task.Run(async () =>
            {
                try
                {
                    while (sent < 20 * 1024 * 1024)
                    {
                        sent += await client.Socket.SendAsync(chunk, SocketFlags.None, cts.Token);
                    }
                }
                catch (Exception e) when (e is SocketException || e is OperationCanceledException)
                {
                }
            });

            try
            {
                // Paused: the queue is full, and the connection reads no more until it has room.
                await Poll.UntilAsync(() => server.Server.QueueLength == 10 && server.Server.BytesReceived > 0, "queue full");

                var stop = server.Server.StopAsync();
                await Poll.WithTimeout(stop, "stop while paused", TimeSpan.FromSeconds(10));
                Assert.Equal(ServerState.Stopped, server.Server.State);
                Assert.Equal(0, server.Server.ConnectionCount);
                Assert.True(server.Server.BytesReceived < 2L * 1024 * 1024, $"read {server.Server.BytesReceived} of a 20 MB flood");
                Assert.Equal(10, (await Queues.DrainToEndAsync(server.Queue)).Count);
            }
            finally
            {
                cts.Cancel();
                client.Dispose();
                await Poll.WithTimeout(flooding, "flooder ended");
                await server.DisposeAsync();
            }

            Assert.DoesNotContain(unobserved.Collect(), e => e.ToString().Contains("PSTcp"));
        }

        [Fact]
        public async Task ConnectCloseChurnLeavesNothingBehind()
        {
            const int count = 1000;
            await using var server = new EchoServer();
            using (var gate = new SemaphoreSlim(32))
            {
                await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
                {
                    await gate.WaitAsync();
                    try
                    {
                        using var client = await server.ConnectAsync();
                        if (i % 2 == 0) client.Reset();
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
            }

            await Poll.UntilAsync(() => server.Server.TotalConnections + server.Server.ConnectionsRefused == count, "all accepted");
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "all gone");
            Assert.Equal(0, server.Server.QueueLength);
            Assert.Equal(0, server.Server.MessagesReceived);

            using var last = await server.ConnectAsync();
            await last.SendAsync("still fine\n");
            Assert.Equal("still fine\n", await last.ReadLineTextAsync());
        }

        [Fact]
        public async Task DropOldestKeepsTheEchoFlowingAndCountsDrops()
        {
            await using var server = new EchoServer(o =>
            {
                o.QueueCapacity = 10;
                o.QueueFullMode = QueueFullMode.DropOldest;
            });
            using var client = await server.ConnectAsync();
            var payload = string.Concat(Enumerable.Range(1, 100).Select(i => $"line {i}\n"));
            await client.SendAsync(payload);
            Assert.Equal(payload, Encoding.Latin1.GetString(await client.ReadExactlyAsync(payload.Length)));
            // Echoes go out before the batch is queued: wait for the queueing, not the echo.
            await Poll.UntilAsync(() => server.Server.MessagesDropped + server.Server.QueueLength == 100, "all queued or dropped");
            Assert.Equal(90, server.Server.MessagesDropped);
            Assert.Equal(90, server.Queue.TakeUnreportedDrops());
            Assert.Equal(Seq(91, 10), (await server.TakeAsync(10)).Select(m => m.Sequence));
            var connection = Assert.Single(server.Server.Connections);
            Assert.Equal(90, connection.MessagesDropped);
        }

        [Fact]
        public async Task ServesIPv6Loopback()
        {
            if (!Socket.OSSupportsIPv6) return;
            TcpServer server;
            try
            {
                server = TcpServer.Start(new TcpServerOptions { Address = "::1", Port = 0 }, EchoLineHandler.Instance);
            }
            catch (TcpException e) when (e.Kind == TcpErrorKind.AddressNotAvailable)
            {
                return; // no ::1 in this container
            }

            try
            {
                using var client = await RawClient.ConnectAsync(server.Port, IPAddress.IPv6Loopback);
                await client.SendAsync("six\n");
                Assert.Equal("six\n", await client.ReadLineTextAsync());
            }
            finally
            {
                await Poll.WithTimeout(server.StopAsync(), "stop");
            }
        }

        [Fact]
        public async Task PortInUseFailsAtOnce()
        {
            await using var server = new EchoServer();
            var e = Assert.Throws<TcpException>(() => TcpServer.Start(new TcpServerOptions { Address = "127.0.0.1", Port = server.Port }, null));
            Assert.Equal(TcpErrorKind.PortInUse, e.Kind);
        }
    }
}

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
    public class ClientTests
    {
        private static Task<TcpConnection> Connect(int port, ConnectionOptions options = null, double timeoutSeconds = 5, string host = "127.0.0.1") =>
            TcpConnection.ConnectAsync(host, port, options ?? new ConnectionOptions(), TimeSpan.FromSeconds(timeoutSeconds), CancellationToken.None);

        /// <summary>A plain listener that accepts one connection and hands over the socket.</summary>
        private sealed class RawServer : IDisposable
        {
            private readonly Socket _listener;

            public RawServer()
            {
                _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                _listener.Listen(16);
            }

            public int Port => ((IPEndPoint)_listener.LocalEndPoint).Port;

            public async Task<Socket> AcceptAsync()
            {
                using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
                return await _listener.AcceptAsync(cts.Token);
            }

            public void Dispose() => _listener.Dispose();
        }

        [Fact]
        public async Task RefusedConnectionIsConnectionRefused()
        {
            // A bound socket that doesn't listen: the port is ours and answers SYN with RST.
            using var placeholder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            placeholder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)placeholder.LocalEndPoint).Port;

            var e = await Assert.ThrowsAsync<TcpException>(() => Poll.WithTimeout(Connect(port), "refused connect"));
            Assert.Equal(TcpErrorKind.ConnectionRefused, e.Kind);
        }

        [Fact]
        public async Task UnresolvableHostIsHostNotFound()
        {
            var e = await Assert.ThrowsAsync<TcpException>(
                () => Poll.WithTimeout(Connect(80, host: "nonexistent.invalid"), "DNS failure", TimeSpan.FromSeconds(30)));
            Assert.Equal(TcpErrorKind.HostNotFound, e.Kind);
        }

        [Fact]
        public async Task ListenerThatNeverAcceptsTimesOut()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            var endPoint = (IPEndPoint)listener.LocalEndPoint;

            // Fill the accept queue: once it is full the kernel drops further SYNs, so a connect
            // hangs. Stop at the first filler that doesn't connect quickly.
            var fillers = new List<Socket>();
            try
            {
                bool full = false;
                for (int i = 0; i < 16 && !full; i++)
                {
                    var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    fillers.Add(filler);
                    using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                    try
                    {
                        await filler.ConnectAsync(endPoint, cts.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        full = true;
                    }
                }

                Assert.True(full, "the accept queue never filled up");

                var clock = Stopwatch.StartNew();
                var e = await Assert.ThrowsAsync<TcpException>(() => Poll.WithTimeout(Connect(endPoint.Port, timeoutSeconds: 1), "connect timeout"));
                Assert.Equal(TcpErrorKind.ConnectTimeout, e.Kind);
                Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"gave up after {clock.ElapsedMilliseconds} ms");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"gave up after {clock.ElapsedMilliseconds} ms");
            }
            finally
            {
                foreach (var filler in fillers) filler.Dispose();
            }
        }

        [Fact]
        public async Task CallerCancellationIsNotATimeout()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Poll.WithTimeout(
                TcpConnection.ConnectAsync("127.0.0.1", ((IPEndPoint)listener.LocalEndPoint).Port, new ConnectionOptions(), TimeSpan.FromSeconds(5), cts.Token),
                "cancelled connect"));
        }

        [Fact]
        public async Task RoundTripWithTheEchoServer()
        {
            await using var server = new EchoServer();
            var client = await Connect(server.Port, new ConnectionOptions { Name = "me" });
            try
            {
                Assert.Equal(ConnectionState.Open, client.State);
                var payload = Encoding.UTF8.GetBytes("hello\r\nw\u00f6rld\n");
                await client.SendAsync(payload.AsMemory());
                var echoes = await Queues.TakeAsync(client.Queue, 2);
                Assert.Equal(new[] { "hello", "w\u00f6rld" }, echoes.Select(m => m.Text));
                Assert.Equal(new long[] { 1, 2 }, echoes.Select(m => m.Sequence));
                Assert.All(echoes, m => Assert.Equal("me", m.Source));
                Assert.All(echoes, m => Assert.Equal(client.Id, m.ConnectionId));
                Assert.Equal(2, client.MessagesReceived);
                Assert.Equal(payload.Length, client.BytesSent);
            }
            finally
            {
                await Poll.WithTimeout(client.CloseAsync(TimeSpan.FromSeconds(2)), "close");
            }

            Assert.Equal(ConnectionState.Closed, client.State);
            Assert.Null(client.Error);
            await Poll.WithTimeout(client.Completion, "client connection completes");
            Assert.True(client.Queue.IsCompleted);
            await Poll.UntilAsync(() => server.Server.ConnectionCount == 0, "server side closed");
        }

        [Fact]
        public async Task LineOverTheClientsLimitCompletesItsQueueWithLineTooLong()
        {
            const int limit = 50;
            using var raw = new RawServer();
            var connecting = Connect(raw.Port, new ConnectionOptions { MaxLineLength = limit });
            using var peer = await raw.AcceptAsync();
            var client = await connecting;
            var reported = new List<TcpErrorEventArgs>();
            client.ErrorReported += (_, e) => { lock (reported) reported.Add(e); };

            await peer.SendAsync(Bytes.Latin1("short\n" + new string('L', limit + 1) + "\nnever\n"), SocketFlags.None);

            Assert.Equal("short", (await Queues.TakeAsync(client.Queue, 1)).Single().Text);
            await Poll.WithTimeout(client.Completion, "client connection completes");
            var e = client.Error;
            Assert.NotNull(e);
            Assert.True(client.Queue.IsCompleted);
            Assert.Equal(TcpErrorKind.LineTooLong, e.Kind);
            Assert.Equal(TcpErrorKind.LineTooLong, client.Error.Kind);
            // Nothing truncated or after it got through.
            Assert.False(client.Queue.TryRead(out _));
            await Poll.WithTimeout(client.Completion, "connection completes");
            Assert.Equal(ConnectionState.Closed, client.State);
            lock (reported)
            {
                Assert.Equal(TcpErrorKind.LineTooLong, Assert.Single(reported).Error.Kind);
            }
        }

        [Fact]
        public async Task UnterminatedFloodOverTheClientsLimitIsCut()
        {
            const int limit = 1000;
            using var raw = new RawServer();
            var connecting = Connect(raw.Port, new ConnectionOptions { MaxLineLength = limit });
            using var peer = await raw.AcceptAsync();
            var client = await connecting;

            var flood = Enumerable.Repeat((byte)'f', 4096).ToArray();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                for (int i = 0; i < 256 && !client.Completion.IsCompleted; i++)
                {
                    await peer.SendAsync(flood, SocketFlags.None, cts.Token);
                }
            }
            catch (SocketException)
            {
                // The client closed on us: expected.
            }

            await Poll.WithTimeout(client.Completion, "client connection completes");
            var e = client.Error;
            Assert.NotNull(e);
            Assert.True(client.Queue.IsCompleted);
            Assert.Equal(TcpErrorKind.LineTooLong, e.Kind);
            Assert.True(client.BytesReceived < 512 * 1024, $"client read {client.BytesReceived} bytes");
        }

        [Fact]
        public async Task PeerResetSurfacesAsAnErrorNotACleanEnd()
        {
            using var raw = new RawServer();
            var connecting = Connect(raw.Port);
            var peer = await raw.AcceptAsync();
            var client = await connecting;
            await peer.SendAsync(Bytes.Latin1("one\npartial"), SocketFlags.None);
            Assert.Equal("one", (await Queues.TakeAsync(client.Queue, 1)).Single().Text);
            await Poll.UntilAsync(() => client.BytesReceived == 11, "client read the partial line");
            peer.LingerState = new LingerOption(true, 0);
            peer.Close();

            await Poll.WithTimeout(client.Completion, "client connection completes");
            var e = client.Error;
            Assert.NotNull(e);
            Assert.True(client.Queue.IsCompleted);
            Assert.Equal(TcpErrorKind.ConnectionReset, e.Kind);
            Assert.False(client.Queue.TryRead(out _));
        }

        [Fact]
        public async Task PeerCloseDeliversTheFinalFragmentAndEndsCleanly()
        {
            using var raw = new RawServer();
            var connecting = Connect(raw.Port);
            using var peer = await raw.AcceptAsync();
            var client = await connecting;
            await peer.SendAsync(Bytes.Latin1("one\r\nlast"), SocketFlags.None);
            peer.Shutdown(SocketShutdown.Send);

            var messages = await Queues.DrainToEndAsync(client.Queue);
            Assert.Equal(new[] { "one", "last" }, messages.Select(m => m.Text));
            Assert.True(client.Queue.IsCompleted);
            Assert.Null(client.Error);
        }

        [Fact]
        public async Task SendAfterCloseIsConnectionClosed()
        {
            await using var server = new EchoServer();
            var client = await Connect(server.Port);
            await Poll.WithTimeout(client.CloseAsync(TimeSpan.FromSeconds(2)), "close");
            var e = await Assert.ThrowsAsync<TcpException>(async () => await client.SendAsync(new byte[] { 1, (byte)'\n' }.AsMemory()));
            Assert.Equal(TcpErrorKind.ConnectionClosed, e.Kind);
        }

        [Fact]
        public async Task AbortEndsAtOnce()
        {
            using var raw = new RawServer();
            var connecting = Connect(raw.Port);
            using var peer = await raw.AcceptAsync();
            var client = await connecting;
            client.Abort();
            await Poll.WithTimeout(client.Completion, "completion after abort");
            Assert.Equal(ConnectionState.Closed, client.State);
            await Poll.WithTimeout(Queues.DrainToEndAsync(client.Queue), "queue completes");
        }


        [Fact]
        public async Task SendThatTheSocketTakesAtOnceCompletesSynchronouslyAndCounts()
        {
            using var server = new RawServer();
            var connecting = Connect(server.Port);
            using var peer = await server.AcceptAsync();
            var client = await Poll.WithTimeout(connecting, "connect");

            // Nobody else sending and room in the socket: done on this thread, nothing to wait for.
            var send = client.SendAsync(Encoding.ASCII.GetBytes("ping\n").AsMemory());
            Assert.True(send.IsCompletedSuccessfully);
            Assert.Equal(5, client.BytesSent);

            var buffer = new byte[16];
            int got = 0;
            while (got < 5) got += await peer.ReceiveAsync(new ArraySegment<byte>(buffer, got, buffer.Length - got), SocketFlags.None);
            Assert.Equal("ping\n", Encoding.ASCII.GetString(buffer, 0, got));
            client.Abort();
        }

        [Fact]
        public async Task SendLargerThanTheSocketTakesFinishesWhenThePeerReadsInOrder()
        {
            using var server = new RawServer();
            var connecting = Connect(server.Port);
            using var peer = await server.AcceptAsync();
            var client = await Poll.WithTimeout(connecting, "connect");

            // Far more than loopback's socket buffers hold: the non-blocking try takes a part,
            // the rest waits for the peer to read.
            var data = new byte[64 * 1024 * 1024];
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + (i >> 16));
            var send = client.SendAsync(data.AsMemory()).AsTask();
            Assert.False(send.IsCompleted);

            // Meanwhile another send waits its turn, and goes after the first one whole.
            var second = client.SendAsync(Encoding.ASCII.GetBytes("end").AsMemory()).AsTask();

            var received = new byte[data.Length + 3];
            int got = 0;
            var clock = Stopwatch.StartNew();
            while (got < received.Length)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"only {got} of {received.Length} bytes arrived");
                got += await peer.ReceiveAsync(new ArraySegment<byte>(received, got, received.Length - got), SocketFlags.None);
            }

            await Poll.WithTimeout(send.ContinueWith(t => t), "large send completes");
            await Poll.WithTimeout(second.ContinueWith(t => t), "second send completes");
            Assert.True(send.IsCompletedSuccessfully);
            Assert.True(second.IsCompletedSuccessfully);
            Assert.True(data.AsSpan().SequenceEqual(received.AsSpan(0, data.Length)));
            Assert.Equal("end", Encoding.ASCII.GetString(received, data.Length, 3));
            Assert.Equal(data.Length + 3, client.BytesSent);
            client.Abort();
        }

        [Fact]
        public async Task SendOnAClosedConnectionFailsItsTaskWithConnectionClosed()
        {
            using var server = new RawServer();
            var connecting = Connect(server.Port);
            using var peer = await server.AcceptAsync();
            var client = await Poll.WithTimeout(connecting, "connect");
            client.Abort();

            // The error is the task's, as from any other send, not thrown by the call.
            var send = client.SendAsync(Encoding.ASCII.GetBytes("late\n").AsMemory());
            var e = await Assert.ThrowsAsync<TcpException>(async () => await send);
            Assert.True(e.Kind == TcpErrorKind.ConnectionClosed || e.Kind == TcpErrorKind.ConnectionReset, e.Kind.ToString());

            // The send lock was given back: the next send fails the same way, it doesn't hang.
            var again = client.SendAsync(Encoding.ASCII.GetBytes("again\n").AsMemory()).AsTask();
            await Assert.ThrowsAsync<TcpException>(() => Poll.WithTimeout(again.ContinueWith(t => t).Unwrap(), "second send fails"));
        }
    }
}

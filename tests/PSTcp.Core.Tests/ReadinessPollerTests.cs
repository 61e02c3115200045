using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace PSTcp.Tests
{
    /// <summary>
    /// The Linux wait for data (<see cref="ReadinessPoller"/>): edge-triggered readiness, so the
    /// cases that matter are the ones an edge reports once: data and FIN together, a wait that
    /// starts after the data came, a close while waiting, descriptors reused.
    /// </summary>
    public sealed class ReadinessPollerTests : IDisposable
    {
        private readonly Socket _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly List<IDisposable> _owned = new List<IDisposable>();

        public ReadinessPollerTests()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(512);
        }

        public void Dispose()
        {
            foreach (var d in _owned) d.Dispose();
            _listener.Dispose();
        }

        /// <summary>A connected pair: the client's socket, and the server's inside a <see cref="SocketTransport"/>.</summary>
        private async Task<(Socket Client, SocketTransport Server)> PairAsync()
        {
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _owned.Add(client);
            var accept = _listener.AcceptAsync();
            await client.ConnectAsync((IPEndPoint)_listener.LocalEndPoint);
            var server = new SocketTransport(await accept);
            _owned.Add(server);
            return (client, server);
        }

        private static async Task WaitAsync(Transport transport, string what) =>
            await Poll.WithTimeout(transport.WaitForDataAsync().AsTask(), what);

        private static async Task<string> ThreadAfter(ValueTask wait)
        {
            await wait.ConfigureAwait(false);
            return Thread.CurrentThread.Name;
        }

        /// <summary>
        /// A wait cut by a close ends: through the poller with ObjectDisposedException; through
        /// .NET's peek (PSTCP_EPOLL=0) with an aborted operation, or at once with the shutdown.
        /// </summary>
        private static async Task AssertCutAsync(Task wait, string what)
        {
            var error = await Record.ExceptionAsync(() => Poll.WithTimeout(wait, what));
            Assert.False(error is TimeoutException, error?.Message);
            if (ReadinessPoller.Enabled) Assert.True(error is ObjectDisposedException, $"{what}: {error?.GetType().Name ?? "no error"}");
        }

        [Theory]
        [InlineData(1, null, 1)]
        [InlineData(2, null, 2)]
        [InlineData(8, null, 8)]
        [InlineData(64, "", 64)]
        [InlineData(0, null, 1)]
        [InlineData(2, "6", 6)]
        [InlineData(16, " 3 ", 3)]
        [InlineData(4, "0", 4)]
        [InlineData(4, "-2", 4)]
        [InlineData(4, "two", 4)]
        [InlineData(4, "1025", 4)]
        [InlineData(4, "1.5", 4)]
        public void PollerCountFollowsTheUsableCoresUnlessOverridden(int usableCores, string setting, int expected)
        {
            Assert.Equal(expected, ReadinessPoller.PollerCount(usableCores, setting));
        }

        [Fact]
        public void PollersAreSizedByTheUsableCoresAndStartedOnlyWhenUsed()
        {
            if (!ReadinessPoller.Enabled) return;
            Assert.Equal(ReadinessPoller.PollerCount(Environment.ProcessorCount, Environment.GetEnvironmentVariable("PSTCP_POLLERS")), ReadinessPoller.Capacity);
            Assert.InRange(ReadinessPoller.Started, 1, ReadinessPoller.Capacity);
        }

        [Fact]
        public void LinuxWaitsThroughThePollers()
        {
            // The fast path must not be lost silently (a failed epoll_create1, a wrong P/Invoke).
            Assert.Equal(RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && Environment.GetEnvironmentVariable("PSTCP_EPOLL") != "0",
                ReadinessPoller.Enabled);
        }

        [Fact]
        public async Task AWaitEndsWhenDataArrivesAndRunsOnThePollersThread()
        {
            var (client, server) = await PairAsync();
            var wait = server.WaitForDataAsync();
            Assert.False(wait.IsCompleted);
            // Awaited (the continuation registered) before the data is sent.
            var resumed = ThreadAfter(wait);
            client.Send(new byte[] { 1, 2, 3 });
            string thread = await Poll.WithTimeout(resumed, "the wait to end after 3 bytes arrived");
            if (ReadinessPoller.Enabled) Assert.StartsWith("PSTcp poller", thread);

            var buffer = new byte[16];
            Assert.Equal(3, server.TryReceive(new ArraySegment<byte>(buffer)));
            Assert.Equal(-1, server.TryReceive(new ArraySegment<byte>(buffer)));
        }

        [Fact]
        public async Task DataThatCameBeforeTheFirstWaitIsReported()
        {
            var (client, server) = await PairAsync();
            client.Send(new byte[] { 7 });
            await Poll.UntilAsync(() => server.Socket.Available == 1, "the byte to arrive");
            await WaitAsync(server, "a wait for a byte that is already there");
            Assert.Equal(1, server.TryReceive(new ArraySegment<byte>(new byte[4])));
        }

        [Fact]
        public async Task DataAndFinReportedTogetherStillReachTheEndOfStream()
        {
            var (client, server) = await PairAsync();
            client.Send(new byte[] { 1, 2, 3, 4, 5, 6 });
            client.Shutdown(SocketShutdown.Send);
            await Poll.UntilAsync(() => server.Socket.Available == 6, "the bytes and FIN to arrive");

            // One edge reports both; the loop reads part, then must learn of the FIN anyway.
            var buffer = new byte[3];
            await WaitAsync(server, "the first wait");
            Assert.Equal(3, server.TryReceive(new ArraySegment<byte>(buffer)));
            await WaitAsync(server, "a wait after a partial read");
            Assert.Equal(3, server.TryReceive(new ArraySegment<byte>(buffer)));
            await WaitAsync(server, "a wait with only the FIN left");
            Assert.Equal(0, server.TryReceive(new ArraySegment<byte>(buffer)));
        }

        [Fact]
        public async Task AResetEndsTheWaitAndTheReadFails()
        {
            var (client, server) = await PairAsync();
            var wait = server.WaitForDataAsync().AsTask();
            client.LingerState = new LingerOption(true, 0);
            client.Close();
            // The poller reports the reset and the read fails; .NET's peek fails itself.
            var error = await Record.ExceptionAsync(async () =>
            {
                await Poll.WithTimeout(wait, "the wait to end on a reset");
                server.TryReceive(new ArraySegment<byte>(new byte[4]));
            });
            Assert.IsType<SocketException>(error);
            Assert.Equal(SocketError.ConnectionReset, ((SocketException)error).SocketErrorCode);
        }

        [Fact]
        public async Task ClosingTheTransportEndsAPendingWait()
        {
            var (_, server) = await PairAsync();
            var wait = server.WaitForDataAsync().AsTask();
            Assert.False(wait.IsCompleted);
            server.Dispose();
            await AssertCutAsync(wait, "the wait to end on close");
        }

        [Fact]
        public async Task ClosedAndReopenedSocketsNeverWakeTheWrongWaiter()
        {
            // Descriptors and poller slots are reused: each round closes every socket of the round
            // before and opens new ones, which get the same numbers and slots.
            for (int round = 0; round < 3; round++)
            {
                var pairs = new List<(Socket Client, SocketTransport Server)>();
                for (int i = 0; i < 50; i++) pairs.Add(await PairAsync());
                var waits = new List<Task>();
                foreach (var (_, server) in pairs) waits.Add(server.WaitForDataAsync().AsTask());

                // Only the even ones get data: an odd one that wakes was woken by somebody else's socket.
                for (int i = 0; i < pairs.Count; i += 2) pairs[i].Client.Send(new byte[] { (byte)i });
                for (int i = 0; i < pairs.Count; i += 2) await Poll.WithTimeout(waits[i], $"round {round}: wait {i} to end");
                for (int i = 0; i < pairs.Count; i += 2)
                {
                    var buffer = new byte[4];
                    Assert.Equal(1, pairs[i].Server.TryReceive(new ArraySegment<byte>(buffer)));
                    Assert.Equal((byte)i, buffer[0]);
                }

                for (int i = 1; i < pairs.Count; i += 2) Assert.False(waits[i].IsCompleted, $"round {round}: wait {i} ended without data");
                foreach (var (client, server) in pairs)
                {
                    server.Dispose();
                    client.Dispose();
                }

                for (int i = 1; i < pairs.Count; i += 2) await AssertCutAsync(waits[i], $"round {round}: wait {i} to end on close");
            }
        }
    }
}

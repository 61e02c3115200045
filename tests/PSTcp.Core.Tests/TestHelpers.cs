using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

// Socket tests share two cores and assert on timeouts (idle, connect): run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace PSTcp.Tests
{
    /// <summary>Polls a condition until it holds or a deadline passes.</summary>
    internal static class Poll
    {
        public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

        public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
        {
            var limit = timeout ?? DefaultTimeout;
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                if (clock.Elapsed > limit)
                {
                    throw new TimeoutException($"Timed out after {limit.TotalSeconds:0.#} s waiting for: {what}");
                }

                await Task.Delay(10);
            }
        }

        /// <summary>Awaits a task, failing the test if it takes longer than the deadline.</summary>
        public static async Task<T> WithTimeout<T>(Task<T> task, string what, TimeSpan? timeout = null)
        {
            var limit = timeout ?? DefaultTimeout;
            if (await Task.WhenAny(task, Task.Delay(limit)) != task)
            {
                throw new TimeoutException($"Timed out after {limit.TotalSeconds:0.#} s waiting for: {what}");
            }

            return await task;
        }

        public static async Task WithTimeout(Task task, string what, TimeSpan? timeout = null)
        {
            var limit = timeout ?? DefaultTimeout;
            if (await Task.WhenAny(task, Task.Delay(limit)) != task)
            {
                throw new TimeoutException($"Timed out after {limit.TotalSeconds:0.#} s waiting for: {what}");
            }

            await task;
        }
    }

    /// <summary>A hand-built buffer segment, to make multi-segment sequences.</summary>
    internal sealed class TestSegment : ReadOnlySequenceSegment<byte>
    {
        private TestSegment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        /// <summary>One segment per part, in order (empty parts make empty segments).</summary>
        public static ReadOnlySequence<byte> Create(params byte[][] parts)
        {
            if (parts.Length == 0) return ReadOnlySequence<byte>.Empty;
            var first = new TestSegment(parts[0], 0);
            var last = first;
            for (int i = 1; i < parts.Length; i++)
            {
                var next = new TestSegment(parts[i], last.RunningIndex + last.Memory.Length);
                last.Next = next;
                last = next;
            }

            return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
        }

        public static ReadOnlySequence<byte> Create(params string[] parts) =>
            Create(parts.Select(Bytes.Latin1).ToArray());
    }

    /// <summary>Builds messages the way a connection does (the constructor is internal).</summary>
    internal static class Messages
    {
        public static TcpMessage Create(byte[] data, TcpConnection origin, long sequence) =>
            new TcpMessage(data, origin, sequence, DateTime.UtcNow.Ticks);
    }

    internal static class Bytes
    {
        /// <summary>One byte per char (chars must be below 256): exact control over the bytes.</summary>
        public static byte[] Latin1(string text) => text.Select(c => checked((byte)c)).ToArray();

        public static string Show(byte[] data) => Encoding.Latin1.GetString(data).Replace("\r", "\\r").Replace("\n", "\\n");

        public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

        public static readonly Encoding Utf8 = new UTF8Encoding(false);
    }

    internal enum EndKind { Eof, Reset }

    /// <summary>A plain socket client with deadline-bounded reads.</summary>
    internal sealed class RawClient : IDisposable
    {
        private readonly List<byte> _pending = new List<byte>();

        private RawClient(Socket socket)
        {
            Socket = socket;
        }

        public Socket Socket { get; }

        /// <summary>A client over a socket the test connected itself (to set its buffer sizes first).</summary>
        public static RawClient Wrap(Socket socket) => new RawClient(socket);

        public static async Task<RawClient> ConnectAsync(int port, IPAddress address = null)
        {
            address ??= IPAddress.Loopback;
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
                await socket.ConnectAsync(new IPEndPoint(address, port), cts.Token);
                return new RawClient(socket);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public async Task SendAsync(byte[] data)
        {
            using var cts = new CancellationTokenSource(Poll.DefaultTimeout);
            int offset = 0;
            while (offset < data.Length)
            {
                offset += await Socket.SendAsync(data.AsMemory(offset), SocketFlags.None, cts.Token);
            }
        }

        public Task SendAsync(string latin1) => SendAsync(Bytes.Latin1(latin1));

        /// <summary>Reads exactly <paramref name="count"/> bytes; fails on EOF or at the deadline.</summary>
        public async Task<byte[]> ReadExactlyAsync(int count, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
            var buffer = new byte[Math.Max(count, 1) + 65536];
            while (_pending.Count < count)
            {
                int n = await Socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    throw new EndOfStreamException($"EOF after {_pending.Count} of {count} bytes: '{Bytes.Show(_pending.ToArray())}'");
                }

                _pending.AddRange(new ArraySegment<byte>(buffer, 0, n));
            }

            var result = _pending.GetRange(0, count).ToArray();
            _pending.RemoveRange(0, count);
            return result;
        }

        /// <summary>Reads up to and including the next LF.</summary>
        public async Task<byte[]> ReadLineAsync(TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
            var buffer = new byte[65536];
            while (true)
            {
                int lf = _pending.IndexOf((byte)'\n');
                if (lf >= 0)
                {
                    var line = _pending.GetRange(0, lf + 1).ToArray();
                    _pending.RemoveRange(0, lf + 1);
                    return line;
                }

                int n = await Socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    throw new EndOfStreamException($"EOF before a line: '{Bytes.Show(_pending.ToArray())}'");
                }

                _pending.AddRange(new ArraySegment<byte>(buffer, 0, n));
            }
        }

        public async Task<string> ReadLineTextAsync(TimeSpan? timeout = null) =>
            Encoding.Latin1.GetString(await ReadLineAsync(timeout));

        /// <summary>Reads until the peer closes; returns what came before the end and how it ended.</summary>
        public async Task<(byte[] Data, EndKind End)> ReadToEndAsync(TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
            var buffer = new byte[65536];
            var data = new List<byte>(_pending);
            _pending.Clear();
            try
            {
                while (true)
                {
                    int n = await Socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, cts.Token);
                    if (n == 0) return (data.ToArray(), EndKind.Eof);
                    data.AddRange(new ArraySegment<byte>(buffer, 0, n));
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset || e.SocketErrorCode == SocketError.ConnectionAborted)
            {
                return (data.ToArray(), EndKind.Reset);
            }
        }

        /// <summary>Whether nothing arrives (no data, no end) within <paramref name="window"/>.</summary>
        public async Task<bool> StaysQuietAsync(TimeSpan window)
        {
            if (_pending.Count > 0) return false;
            using var cts = new CancellationTokenSource(window);
            var buffer = new byte[1];
            try
            {
                int n = await Socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.Peek, cts.Token);
                return false;
            }
            catch (OperationCanceledException)
            {
                return true;
            }
        }

        /// <summary>Closes with RST instead of FIN.</summary>
        public void Reset()
        {
            Socket.LingerState = new LingerOption(true, 0);
            Socket.Close();
        }

        public void Dispose() => Socket.Dispose();
    }

    /// <summary>An echo server on a free loopback port, stopped when disposed.</summary>
    internal sealed class EchoServer : IAsyncDisposable
    {
        public EchoServer(Action<TcpServerOptions> configure = null, LineHandler handler = null)
        {
            Options = new TcpServerOptions
            {
                Address = "127.0.0.1",
                Port = 0,
                StopTimeout = TimeSpan.FromSeconds(2),
            };
            configure?.Invoke(Options);
            Server = TcpServer.Start(Options, handler ?? EchoLineHandler.Instance);
        }

        public TcpServerOptions Options { get; }

        public TcpServer Server { get; }

        public int Port => Server.Port;

        public MessageQueue Queue => Server.Queue;

        public Task<RawClient> ConnectAsync() => RawClient.ConnectAsync(Port);

        /// <summary>Takes exactly <paramref name="count"/> messages off the server's queue.</summary>
        public Task<List<TcpMessage>> TakeAsync(int count, TimeSpan? timeout = null) => Queues.TakeAsync(Queue, count, timeout);

        public async ValueTask DisposeAsync()
        {
            await Poll.WithTimeout(Server.StopAsync(), "server stop", TimeSpan.FromSeconds(15));
        }
    }

    internal static class Queues
    {
        public static async Task<List<TcpMessage>> TakeAsync(MessageQueue queue, int count, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
            var list = new List<TcpMessage>(count);
            try
            {
                while (list.Count < count)
                {
                    if (queue.TryRead(out var message)) list.Add(message);
                    else if (!await queue.WaitToReadAsync(cts.Token)) throw new InvalidOperationException($"The queue ended after {list.Count} of {count} messages.");
                }
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Got {list.Count} of {count} messages from the queue.");
            }

            return list;
        }

        /// <summary>Reads until the queue completes (bounded by a deadline).</summary>
        public static async Task<List<TcpMessage>> DrainToEndAsync(MessageQueue queue, TimeSpan? timeout = null)
        {
            using var cts = new CancellationTokenSource(timeout ?? Poll.DefaultTimeout);
            var list = new List<TcpMessage>();
            while (await queue.WaitToReadAsync(cts.Token))
            {
                while (queue.TryRead(out var message)) list.Add(message);
            }

            return list;
        }
    }

    /// <summary>Records unobserved task exceptions raised while it is alive.</summary>
    internal sealed class UnobservedExceptions : IDisposable
    {
        private readonly List<Exception> _seen = new List<Exception>();

        public UnobservedExceptions()
        {
            TaskScheduler.UnobservedTaskException += OnUnobserved;
        }

        public IReadOnlyList<Exception> Collect()
        {
            for (int i = 0; i < 2; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            lock (_seen) return _seen.ToList();
        }

        private void OnUnobserved(object sender, UnobservedTaskExceptionEventArgs e)
        {
            lock (_seen) _seen.Add(e.Exception);
        }

        public void Dispose() => TaskScheduler.UnobservedTaskException -= OnUnobserved;
    }
}

using System;
using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// Relays each line to every other connected client (a chat hub, like ncat --broker). Each
    /// receiver has a bounded outbox drained by its own send loop, so a slow receiver can't
    /// stall the others: when its outbox overflows it is disconnected and the error counted.
    /// </summary>
    public sealed class BroadcastLineHandler : LineHandler
    {
        public const int DefaultMaxQueuedBytes = 1024 * 1024;

        private readonly ConcurrentDictionary<int, Outbox> _outboxes = new ConcurrentDictionary<int, Outbox>();
        private readonly int _maxQueuedBytes;

        public override bool NeedsMessages => false;

        internal override bool RunsInline => true;

        public BroadcastLineHandler(int maxQueuedBytes = DefaultMaxQueuedBytes)
        {
            _maxQueuedBytes = maxQueuedBytes;
        }

        public override void OnConnected(TcpConnection connection)
        {
            var outbox = new Outbox(connection, _maxQueuedBytes);
            _outboxes[connection.Id] = outbox;
            outbox.Start();
        }

        public override void OnDisconnected(TcpConnection connection)
        {
            if (_outboxes.TryRemove(connection.Id, out var outbox))
            {
                outbox.Complete();
            }
        }

        public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
        {
            byte[] bytes = null;
            foreach (var outbox in _outboxes.Values)
            {
                if (outbox.Connection == connection) continue;
                // One copy, shared by every receiver.
                bytes = bytes ?? rawLines.ToArray();
                outbox.Post(bytes, lineCount);
            }

            return default;
        }

        private sealed class Outbox
        {
            private readonly Channel<(byte[] Data, int Lines)> _pending =
                Channel.CreateUnbounded<(byte[], int)>(new UnboundedChannelOptions { SingleReader = true });
            private readonly int _maxQueuedBytes;
            private long _queuedBytes;
            private static readonly long StuckAfter = Stopwatch.Frequency / 20;
            private const int HardCapFactor = 16;
            private long _sendStarted;

            public Outbox(TcpConnection connection, int maxQueuedBytes)
            {
                Connection = connection;
                _maxQueuedBytes = maxQueuedBytes;
            }

            public TcpConnection Connection { get; }

            public void Start() => _ = PumpAsync();

            public void Complete() => _pending.Writer.TryComplete();

            public void Post(byte[] data, int lines)
            {
                // Behind means: more than the limit waits behind a send to this receiver that has
                // been stuck for a while (its socket buffer is full). A burst that arrives while
                // its send loop is merely busy or about to run is taken, up to a hard cap.
                long queued = Interlocked.Add(ref _queuedBytes, data.Length);
                long sendStarted = Interlocked.Read(ref _sendStarted);
                bool stuck = sendStarted != 0 && Stopwatch.GetTimestamp() - sendStarted > StuckAfter;
                if ((queued > _maxQueuedBytes && stuck) || queued > (long)_maxQueuedBytes * HardCapFactor)
                {
                    if (_pending.Writer.TryComplete())
                    {
                        var error = new TcpException(TcpErrorKind.SlowReceiver,
                            $"Connection {Connection.Id} ({Connection.RemoteEndPoint}) fell more than {_maxQueuedBytes} bytes behind the broadcast and was disconnected.");
                        Connection.Server?.RecordError(error, Connection);
                        // A reset, not a FIN: the peer isn't reading, and what the kernel still
                        // holds for it is discarded at once.
                        Connection.Abort(reset: true);
                    }

                    return;
                }

                _pending.Writer.TryWrite((data, lines));
            }

            private async Task PumpAsync()
            {
                var reader = _pending.Reader;
                try
                {
                    while (await reader.WaitToReadAsync().ConfigureAwait(false))
                    {
                        while (reader.TryRead(out var item))
                        {
                            // Counted out as it leaves the outbox: what is queued is what waits
                            // behind the send in progress, i.e. how far this receiver is behind.
                            Interlocked.Add(ref _queuedBytes, -item.Data.Length);
                            Interlocked.Exchange(ref _sendStarted, Stopwatch.GetTimestamp());
                            await Connection.SendAsync(new ReadOnlyMemory<byte>(item.Data)).ConfigureAwait(false);
                            Interlocked.Exchange(ref _sendStarted, 0);
                            Connection.CountMessagesSent(item.Lines);
                        }
                    }
                }
                catch (TcpException)
                {
                    // The receiver went away; its own connection records how.
                    Complete();
                }
            }
        }
    }
}

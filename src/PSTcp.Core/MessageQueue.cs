using System;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// The bounded queue between the connections of one source and its consumers. Each message
    /// goes to exactly one consumer. Drops are counted, and reported once to the next consumer.
    /// </summary>
    public sealed class MessageQueue
    {
        private readonly Channel<TcpMessage> _channel;
        private long _dropped;
        private long _reportedDrops;
        private volatile bool _completed;

        public MessageQueue(int capacity, QueueFullMode fullMode)
        {
            if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
            Capacity = capacity;
            FullMode = fullMode;
            var options = new BoundedChannelOptions(capacity)
            {
                FullMode = fullMode switch
                {
                    QueueFullMode.Wait => BoundedChannelFullMode.Wait,
                    QueueFullMode.DropOldest => BoundedChannelFullMode.DropOldest,
                    // The channel's DropNewest evicts the newest *queued* item; ours drops the incoming one.
                    _ => BoundedChannelFullMode.DropWrite,
                },
                SingleReader = false,
                SingleWriter = false,
            };
            _channel = Channel.CreateBounded<TcpMessage>(options, OnDropped);
        }

        public int Capacity { get; }

        public QueueFullMode FullMode { get; }

        public int Count => _channel.Reader.Count;

        public long DroppedCount => Interlocked.Read(ref _dropped);

        /// <summary>Where consumers take messages from; completes when the source has ended.</summary>
        public ChannelReader<TcpMessage> Reader => _channel.Reader;

        /// <summary>Raised (on a socket thread) for errors consumers should see, e.g. LineTooLong.</summary>
        public event EventHandler<TcpErrorEventArgs> ErrorReported;

        /// <summary>Raised (on a socket thread) when a connection of this source opens or closes.</summary>
        public event EventHandler<TcpConnectionEventArgs> ConnectionChanged;

        internal void ReportConnection(TcpConnection connection, bool opened)
        {
            ConnectionChanged?.Invoke(this, new TcpConnectionEventArgs(connection, opened));
        }

        /// <summary>
        /// Queues a message; in Wait mode this waits for room, which pauses the connection. A
        /// cancelled wait leaves the message to the caller (who counts it with <see cref="CountDropped"/>).
        /// </summary>
        public ValueTask WriteAsync(TcpMessage message, CancellationToken cancellationToken)
        {
            if (_channel.Writer.TryWrite(message))
            {
                return default;
            }

            if (FullMode != QueueFullMode.Wait)
            {
                // Only a completed queue refuses a write in the drop modes.
                OnDropped(message);
                return default;
            }

            return WaitAndWriteAsync(message, cancellationToken);
        }

        private async ValueTask WaitAndWriteAsync(TcpMessage message, CancellationToken cancellationToken)
        {
            try
            {
                await _channel.Writer.WriteAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                OnDropped(message);
            }

        }

        /// <summary>Counts a message that was read but never made it into the queue.</summary>
        internal void CountDropped(TcpMessage message) => OnDropped(message);

        /// <summary>Drops since the last call: a consumer reports them once as a warning.</summary>
        public long TakeUnreportedDrops()
        {
            long dropped = Interlocked.Read(ref _dropped);
            return dropped - Interlocked.Exchange(ref _reportedDrops, dropped);
        }

        internal void ReportError(TcpException error, TcpConnection connection)
        {
            ErrorReported?.Invoke(this, new TcpErrorEventArgs(error, connection));
        }

        /// <summary>No more messages will come; consumers get what is queued, then end.</summary>
        public void Complete(Exception error = null)
        {
            _completed = true;
            _channel.Writer.TryComplete(error);
        }

        /// <summary>Whether the source has ended (messages may still be queued).</summary>
        public bool IsCompleted => _completed;

        private void OnDropped(TcpMessage message)
        {
            Interlocked.Increment(ref _dropped);
            message.Origin?.CountDropped();
        }
    }

    public sealed class TcpErrorEventArgs : EventArgs
    {
        public TcpErrorEventArgs(TcpException error, TcpConnection connection)
        {
            Error = error;
            Connection = connection;
        }

        public TcpException Error { get; }

        public TcpConnection Connection { get; }
    }

    public sealed class TcpConnectionEventArgs : EventArgs
    {
        public TcpConnectionEventArgs(TcpConnection connection, bool opened)
        {
            Connection = connection;
            Opened = opened;
        }

        public TcpConnection Connection { get; }

        /// <summary>True when the connection was accepted, false when it closed.</summary>
        public bool Opened { get; }

        public override string ToString() => Opened
            ? $"Connection {Connection.Id} from {Connection.RemoteEndPoint} accepted."
            : $"Connection {Connection.Id} from {Connection.RemoteEndPoint} closed after {Connection.MessagesReceived} line(s) received, {Connection.MessagesSent} sent" +
              (Connection.Error != null ? $": {Connection.Error.Message}" : ".");
    }
}

using System;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// The bounded queue between the connections of one source and its consumers; it only holds
    /// messages (events and completion belong to the source, <see cref="IMessageSource"/>).
    /// </summary>
    /// <remarks>
    /// A ring of small entries (block, offset, length, connection, sequence, time): a
    /// connection queues a whole read batch under one lock and nothing is allocated per message
    /// until a consumer takes it, when its <see cref="TcpMessage"/> is made. Capacity counts
    /// messages; each message goes to exactly one consumer; a connection's messages stay in
    /// order; drops are counted exactly, and reported once (<see cref="TakeUnreportedDrops"/>).
    /// </remarks>
    public sealed class MessageQueue
    {
        private const int InitialRingSize = 16;

        private readonly object _lock = new object();
        private Entry[] _ring = Array.Empty<Entry>();
        private int _head;
        private int _count;
        private bool _completed;
        private long _dropped;
        private long _reportedDrops;

        // Consumers waiting for messages, producers (Wait mode) waiting for room: one shared
        // signal each, replaced once set, so a wait allocates only when it really waits.
        private TaskCompletionSource<bool> _readable;
        private TaskCompletionSource<bool> _writable;

        public MessageQueue(int capacity, QueueFullMode fullMode)
        {
            if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
            Capacity = capacity;
            FullMode = fullMode;
        }

        public int Capacity { get; }

        public QueueFullMode FullMode { get; }

        public int Count => Volatile.Read(ref _count);

        public long DroppedCount => Interlocked.Read(ref _dropped);

        /// <summary>Whether the source has ended: no more messages will come (some may still be queued).</summary>
        public bool IsCompleted => Volatile.Read(ref _completed);

        /// <summary>Drops since the last call: a consumer reports them once as a warning.</summary>
        public long TakeUnreportedDrops()
        {
            long dropped = Interlocked.Read(ref _dropped);
            return dropped - Interlocked.Exchange(ref _reportedDrops, dropped);
        }

        /// <summary>Takes the next message, if one is queued.</summary>
        public bool TryRead(out TcpMessage message)
        {
            TaskCompletionSource<bool> writable = null;
            Entry entry;
            lock (_lock)
            {
                if (_count == 0)
                {
                    message = null;
                    return false;
                }

                entry = _ring[_head];
                _ring[_head] = default;
                if (++_head == _ring.Length) _head = 0;
                _count--;
                if (_writable != null && _count < Capacity)
                {
                    writable = _writable;
                    _writable = null;
                }
            }

            writable?.TrySetResult(true);
            message = entry.ToMessage();
            return true;
        }

        /// <summary>
        /// Waits until a message is queued (true) or the queue is completed and empty (false).
        /// Cancelling the token ends the wait with <see cref="OperationCanceledException"/>.
        /// </summary>
        public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
        {
            Task<bool> signal;
            lock (_lock)
            {
                if (_count > 0) return new ValueTask<bool>(true);
                if (_completed) return new ValueTask<bool>(false);
                signal = (_readable ?? (_readable = NewSignal())).Task;
            }

            return new ValueTask<bool>(WaitAsync(signal, cancellationToken));
        }

        private async Task<bool> WaitAsync(Task<bool> signal, CancellationToken cancellationToken)
        {
            await WhenSignalled(signal, cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                return _count > 0 || !_completed;
            }
        }

        /// <summary>
        /// Queues a connection's batch, in order. Drop modes never wait; Wait mode waits for
        /// room (which pauses that connection's reading). What a cancelled wait or a completed
        /// queue leaves out is counted as dropped.
        /// </summary>
        internal ValueTask EnqueueAsync(Entry[] batch, int count, CancellationToken cancellationToken)
        {
            int taken = Enqueue(batch, 0, count);
            return taken == count ? default : EnqueueRestAsync(batch, taken, count, cancellationToken);
        }

        private async ValueTask EnqueueRestAsync(Entry[] batch, int taken, int count, CancellationToken cancellationToken)
        {
            try
            {
                while (taken < count)
                {
                    Task<bool> signal;
                    lock (_lock)
                    {
                        if (_completed || _count < Capacity)
                        {
                            signal = null;
                        }
                        else
                        {
                            signal = (_writable ?? (_writable = NewSignal())).Task;
                        }
                    }

                    if (signal != null)
                    {
                        await WhenSignalled(signal, cancellationToken).ConfigureAwait(false);
                    }

                    taken += Enqueue(batch, taken, count);
                }
            }
            catch (OperationCanceledException)
            {
                for (int i = taken; i < count; i++) CountDropped(batch[i].Origin);
                throw;
            }
        }

        /// <summary>Queues one message (as <see cref="EnqueueAsync"/> does a batch).</summary>
        internal ValueTask WriteAsync(TcpMessage message, CancellationToken cancellationToken) =>
            EnqueueAsync(new[] { message.ToEntry() }, 1, cancellationToken);

        /// <summary>Takes the next message, waiting for one; null when the queue is completed and empty.</summary>
        public async ValueTask<TcpMessage> ReadAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (TryRead(out var message)) return message;
                if (!await WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return null;
            }
        }

        /// <summary>Queues what it may of batch[from..count); returns how many it dealt with (queued or dropped).</summary>
        private int Enqueue(Entry[] batch, int from, int count)
        {
            TaskCompletionSource<bool> readable = null;
            int handled = 0;
            int droppedHere = 0;
            TcpConnection droppedOrigin = null;
            lock (_lock)
            {
                if (_completed)
                {
                    for (int i = from; i < count; i++) CountDroppedLocked(batch[i].Origin, ref droppedHere, ref droppedOrigin);
                    handled = count - from;
                }
                else
                {
                    for (int i = from; i < count; i++)
                    {
                        if (_count == Capacity)
                        {
                            if (FullMode == QueueFullMode.Wait) break;
                            if (FullMode == QueueFullMode.DropNewest)
                            {
                                CountDroppedLocked(batch[i].Origin, ref droppedHere, ref droppedOrigin);
                                handled++;
                                continue;
                            }

                            // DropOldest: the oldest queued message makes room.
                            CountDroppedLocked(_ring[_head].Origin, ref droppedHere, ref droppedOrigin);
                            _ring[_head] = default;
                            if (++_head == _ring.Length) _head = 0;
                            _count--;
                        }

                        if (_count == _ring.Length) Grow();
                        // Wrap without a division: this runs once per message.
                        int tail = _head + _count;
                        if (tail >= _ring.Length) tail -= _ring.Length;
                        _ring[tail] = batch[i];
                        _count++;
                        handled++;
                    }

                    if (_readable != null && _count > 0)
                    {
                        readable = _readable;
                        _readable = null;
                    }
                }
            }

            FlushDropped(droppedHere, droppedOrigin);
            readable?.TrySetResult(true);
            return handled;
        }

        // Drops are counted per connection too; consecutive drops of one connection are added at once.
        private void CountDroppedLocked(TcpConnection origin, ref int pending, ref TcpConnection pendingOrigin)
        {
            if (pendingOrigin != origin)
            {
                FlushDropped(pending, pendingOrigin);
                pending = 0;
                pendingOrigin = origin;
            }

            pending++;
        }

        private void FlushDropped(int count, TcpConnection origin)
        {
            if (count == 0) return;
            Interlocked.Add(ref _dropped, count);
            origin?.CountDropped(count);
        }

        /// <summary>Counts a message that was read but never made it into the queue.</summary>
        internal void CountDropped(TcpConnection origin) => FlushDropped(1, origin);

        private void Grow()
        {
            // The ring grows on demand up to the capacity: a quiet source holds a few entries, not 10,000.
            int size = Math.Min(Capacity, Math.Max(InitialRingSize, _ring.Length * 2));
            var ring = new Entry[size];
            for (int i = 0; i < _count; i++) ring[i] = _ring[(_head + i) % _ring.Length];
            _ring = ring;
            _head = 0;
        }

        /// <summary>No more messages will come; consumers get what is queued, then end.</summary>
        public void Complete()
        {
            TaskCompletionSource<bool> readable, writable;
            lock (_lock)
            {
                if (_completed) return;
                _completed = true;
                readable = _readable;
                writable = _writable;
                _readable = _writable = null;
            }

            readable?.TrySetResult(false);
            writable?.TrySetResult(false);
        }

        private static TaskCompletionSource<bool> NewSignal() =>
            new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

        private static async Task WhenSignalled(Task signal, CancellationToken cancellationToken)
        {
            if (!cancellationToken.CanBeCanceled)
            {
                await signal.ConfigureAwait(false);
                return;
            }

            if (signal.IsCompleted) return;
            var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(s => ((TaskCompletionSource<bool>)s).TrySetResult(true), cancelled))
            {
                if (await Task.WhenAny(signal, cancelled.Task).ConfigureAwait(false) != signal)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }
        }

        /// <summary>One queued message, before a consumer makes it a <see cref="TcpMessage"/>.</summary>
        internal struct Entry
        {
            public byte[] Block;
            public int Offset;
            public int Length;
            public TcpConnection Origin;
            public long Sequence;
            public long UtcTicks;

            public TcpMessage ToMessage() => new TcpMessage(Block, Offset, Length, Origin, Sequence, UtcTicks);
        }
    }
}

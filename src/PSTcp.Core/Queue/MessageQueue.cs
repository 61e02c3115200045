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
    /// A ring of small entries (offset, length, sequence) beside a ring of the blocks they lie
    /// in, one per run of messages read together: a connection queues a whole
    /// read batch under one lock and nothing is allocated per message until a consumer takes
    /// it, when its <see cref="TcpMessage"/> is made with its own copy of its bytes. The
    /// batch's bytes are one <see cref="MessageBlock"/>, usually a pooled array, which goes back
    /// to the pool when its last message is taken or dropped: a busy queue that evicts
    /// allocates nothing, and the garbage collector has no blocks to promote. Capacity counts
    /// messages, <see cref="ByteLimit"/> the bytes of their Data (whichever is reached first
    /// makes the queue full; one message is always let into an empty queue, however large, so a
    /// Wait-mode producer never waits for room that can't come); each message goes to exactly one consumer; a connection's messages stay in
    /// order; drops are counted exactly, and reported once (<see cref="TakeUnreportedDrops"/>).
    /// </remarks>
    public sealed class MessageQueue
    {
        private const int InitialRingSize = 16;

        /// <summary>The default <see cref="ByteLimit"/>: 64 MiB of queued Data.</summary>
        public const long DefaultByteLimit = 64L * 1024 * 1024;

        private readonly object _lock = new object();
        // The messages (no references: the collector has nothing to scan, a write no barrier),
        // and beside them, in the same order, runs of consecutive messages that share a block.
        private Entry[] _ring = Array.Empty<Entry>();
        private int _head;
        private int _count;
        private Run[] _runs = Array.Empty<Run>();
        private int _runHead;
        private int _runCount;
        private bool _completed;
        private long _dropped;
        private long _reportedDrops;
        // Bytes of the queued messages' Data: written under the lock, read without it.
        private long _bytes;

        // Consumers waiting for messages, producers (Wait mode) waiting for room: one shared
        // signal each, replaced once set, so a wait allocates only when it really waits.
        private TaskCompletionSource<bool> _readable;
        private TaskCompletionSource<bool> _writable;

        public MessageQueue(int capacity, QueueFullMode fullMode)
            : this(capacity, fullMode, DefaultByteLimit)
        {
        }

        public MessageQueue(int capacity, QueueFullMode fullMode, long byteLimit)
        {
            if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
            if (byteLimit < 1) throw new ArgumentOutOfRangeException(nameof(byteLimit));
            Capacity = capacity;
            FullMode = fullMode;
            ByteLimit = byteLimit;
        }

        public int Capacity { get; }

        /// <summary>The most bytes of Data the queued messages may hold (a single larger message still fits an empty queue).</summary>
        public long ByteLimit { get; }

        /// <summary>Bytes of the queued messages' Data.</summary>
        public long Bytes => Interlocked.Read(ref _bytes);

        public QueueFullMode FullMode { get; }

        public int Count => Volatile.Read(ref _count);

        public long DroppedCount => Interlocked.Read(ref _dropped);

        /// <summary>Whether the source has ended: no more messages will come (some may still be queued).</summary>
        public bool IsCompleted => Volatile.Read(ref _completed);

        /// <summary>Drops since the last call: a consumer reports them once as a warning.</summary>
        public long TakeUnreportedDrops()
        {
            // Several consumers may ask at once: each drop is reported by exactly one of them,
            // and an older read of the count never moves the mark back (no negative report).
            while (true)
            {
                long reported = Interlocked.Read(ref _reportedDrops);
                long dropped = Interlocked.Read(ref _dropped);
                if (dropped <= reported) return 0;
                if (Interlocked.CompareExchange(ref _reportedDrops, dropped, reported) == reported) return dropped - reported;
            }
        }

        /// <summary>Takes the next message, if one is queued.</summary>
        public bool TryRead(out TcpMessage message)
        {
            TaskCompletionSource<bool> writable = null;
            Entry entry;
            MessageBlock block;
            lock (_lock)
            {
                if (_count == 0)
                {
                    message = null;
                    return false;
                }

                entry = _ring[_head];
                if (++_head == _ring.Length) _head = 0;
                _count--;
                Interlocked.Add(ref _bytes, -entry.Length);
                block = TakeFromFirstRun(1);
                if (_writable != null)
                {
                    // Room grew (in messages and bytes): a waiting producer looks again.
                    writable = _writable;
                    _writable = null;
                }
            }

            writable?.TrySetResult(true);
            // The message gets its own copy of its bytes, then the block may go back to the pool.
            message = new TcpMessage(block.Array, entry.Offset, entry.Length, block.Origin, entry.Sequence, block.UtcTicks);
            if (block.Truncated) message.Truncated = true;
            block.Release(1);
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

        /// <summary>
        /// For a consumer that blocks a thread of its own (a cmdlet's receive): null when a message
        /// is queued or the queue is completed, else a task that completes when that may have
        /// changed. A thread blocked on it (Task.Wait, Task.WaitAny) is woken by the producer's
        /// thread itself, where an awaited continuation first hops to the thread pool: one
        /// thread switch less per message waited for (a request's round trip had four).
        /// </summary>
        internal Task ReadableSignal()
        {
            lock (_lock)
            {
                if (_count > 0 || _completed) return null;
                return (_readable ?? (_readable = NewSignal())).Task;
            }
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
        /// <param name="block">The batch's bytes; the queue owns its reference from here on.</param>
        /// <param name="frames">Where each message lies in the block, as offsets from <paramref name="offset"/>.</param>
        /// <param name="offset">Where the batch starts in the block.</param>
        /// <param name="count">How many messages (frames[0..count)).</param>
        /// <param name="firstSequence">The first message's sequence; the others follow it.</param>
        /// <param name="cancellationToken">Ends a Wait-mode wait; the rest is counted as dropped.</param>
        internal ValueTask EnqueueAsync(MessageBlock block, Framing.Frame[] frames, int offset, int count, long firstSequence, CancellationToken cancellationToken)
        {
            var batch = new Batch(block, frames, offset, firstSequence);
            int taken = Enqueue(batch, 0, count);
            return taken == count ? default : EnqueueRestAsync(batch, taken, count, cancellationToken);
        }

        private async ValueTask EnqueueRestAsync(Batch batch, int taken, int count, CancellationToken cancellationToken)
        {
            try
            {
                while (taken < count)
                {
                    Task<bool> signal;
                    lock (_lock)
                    {
                        if (_completed || Fits(batch.Frames[taken].PayloadLength))
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
                FlushDropped(count - taken, batch.Block.Origin);
                batch.Block.Release(count - taken);
                throw;
            }
        }

        /// <summary>Queues one message (as <see cref="EnqueueAsync"/> does a batch).</summary>
        internal ValueTask WriteAsync(TcpMessage message, CancellationToken cancellationToken)
        {
            var data = message.Data;
            var block = new MessageBlock(data, pooled: false, message.Origin, message.Timestamp.UtcTicks, references: 1);
            var frames = new[] { new Framing.Frame(0, data.Length, data.Length) };
            return EnqueueAsync(block, frames, 0, 1, message.Sequence, cancellationToken);
        }

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
        private int Enqueue(in Batch batch, int from, int count)
        {
            TaskCompletionSource<bool> readable = null;
            int handled;
            var evicted = default(Evictions);
            var block = batch.Block;
            var frames = batch.Frames;
            // The batch's bytes, summed before the lock is taken.
            long batchBytes = 0;
            for (int i = from; i < count; i++) batchBytes += frames[i].PayloadLength;
            lock (_lock)
            {
                int room = Capacity - _count;
                if (_completed)
                {
                    handled = count - from;
                    evicted.Add(this, block, handled);
                }
                else if (room >= count - from && (_bytes + batchBytes <= ByteLimit || (_count == 0 && count - from == 1)))
                {
                    // The whole batch fits: the common case, no per-message check.
                    handled = count - from;
                    Append(batch, from, handled, batchBytes);
                }
                else if (FullMode == QueueFullMode.Wait)
                {
                    handled = FittingPrefix(frames, from, Math.Min(room, count - from), out long bytes);
                    Append(batch, from, handled, bytes);
                }
                else if (FullMode == QueueFullMode.DropNewest)
                {
                    // Each message that fits is queued, each that doesn't dropped, in order (a
                    // short one after a dropped long one may still fit the byte limit).
                    handled = count - from;
                    int i = from;
                    while (i < count)
                    {
                        int start = i;
                        long bytes = 0;
                        while (i < count && _count + (i - start) < Capacity
                            && (_bytes + bytes + frames[i].PayloadLength <= ByteLimit || (_count == 0 && i == start)))
                        {
                            bytes += frames[i].PayloadLength;
                            i++;
                        }

                        Append(batch, start, i - start, bytes);
                        int skipped = i;
                        while (i < count && !Fits(frames[i].PayloadLength)) i++;
                        evicted.Add(this, block, i - skipped);
                    }
                }
                else
                {
                    // DropOldest: the oldest queued messages make room; a batch larger than the
                    // whole queue (in messages or bytes) drops its own first messages too.
                    handled = count - from;
                    int keep = 0;
                    long keepBytes = 0;
                    for (int i = count - 1; i >= from && keep < Capacity; i--)
                    {
                        long next = keepBytes + frames[i].PayloadLength;
                        if (next > ByteLimit && keep > 0) break;
                        keepBytes = next;
                        keep++;
                    }

                    int evict = 0;
                    long evictBytes = 0;
                    int at = _head;
                    while (evict < _count && (_count - evict + keep > Capacity || _bytes - evictBytes + keepBytes > ByteLimit))
                    {
                        evictBytes += _ring[at].Length;
                        evict++;
                        if (++at == _ring.Length) at = 0;
                    }

                    _head = at;
                    _count -= evict;
                    Interlocked.Add(ref _bytes, -evictBytes);
                    while (evict > 0)
                    {
                        // A run at a time: eviction costs per block, not per message.
                        int take = Math.Min(evict, _runs[_runHead].Count);
                        evicted.Add(this, TakeFromFirstRun(take), take);
                        evict -= take;
                    }

                    if (handled > keep) evicted.Add(this, block, handled - keep);
                    Append(batch, from + handled - keep, keep, keepBytes);
                }

                if (_readable != null && _count > 0)
                {
                    readable = _readable;
                    _readable = null;
                }
            }

            evicted.Flush(this);
            readable?.TrySetResult(true);
            return handled;
        }

        // Under the lock: whether one more message of this length fits (an empty queue takes any one).
        private bool Fits(int length) => _count == 0 || (_count < Capacity && _bytes + length <= ByteLimit);

        // Under the lock: how many of frames[from..from+max) fit the byte limit, in order (at least one into an empty queue).
        private int FittingPrefix(Framing.Frame[] frames, int from, int max, out long bytes)
        {
            bytes = 0;
            int n = 0;
            while (n < max)
            {
                long next = bytes + frames[from + n].PayloadLength;
                if (_bytes + next > ByteLimit && !(_count == 0 && n == 0)) break;
                bytes = next;
                n++;
            }

            return n;
        }

        // Under the lock: batch[from..from+n) into the ring's tail (there is room).
        private void Append(in Batch batch, int from, int n, long bytes)
        {
            if (n == 0) return;
            Interlocked.Add(ref _bytes, bytes);
            if (_ring.Length < _count + n) GrowRing(_count + n);
            int tail = _head + _count;
            if (tail >= _ring.Length) tail -= _ring.Length;
            var frames = batch.Frames;
            int offset = batch.Offset;
            long sequence = batch.FirstSequence + from;
            for (int i = from, end = from + n; i < end; i++)
            {
                ref var slot = ref _ring[tail];
                slot.Offset = offset + frames[i].PayloadOffset;
                slot.Length = frames[i].PayloadLength;
                slot.Sequence = sequence++;
                // Wrap without a division: this runs once per message.
                if (++tail == _ring.Length) tail = 0;
            }

            _count += n;
            AddRun(batch.Block, n);
        }

        private void AddRun(MessageBlock block, int n)
        {
            if (_runCount > 0)
            {
                // A Wait-mode batch queued in parts continues its run.
                int last = _runHead + _runCount - 1;
                if (last >= _runs.Length) last -= _runs.Length;
                if (_runs[last].Block == block)
                {
                    _runs[last].Count += n;
                    return;
                }
            }

            if (_runCount == _runs.Length) GrowRuns();
            int at = _runHead + _runCount;
            if (at >= _runs.Length) at -= _runs.Length;
            _runs[at] = new Run { Block = block, Count = n };
            _runCount++;
        }

        // Under the lock: n of the oldest messages left the ring (all of the first run's, at most); their block.
        private MessageBlock TakeFromFirstRun(int n)
        {
            ref var run = ref _runs[_runHead];
            var block = run.Block;
            run.Count -= n;
            if (run.Count == 0)
            {
                run.Block = null;
                if (++_runHead == _runs.Length) _runHead = 0;
                _runCount--;
            }

            return block;
        }

        /// <summary>
        /// Messages that leave without a consumer (evicted, or never queued), gathered by runs of
        /// one block: each run is counted as dropped and released at once, not per message.
        /// </summary>
        private struct Evictions
        {
            private MessageBlock _block;
            private int _count;

            public void Add(MessageQueue queue, MessageBlock block, int count)
            {
                if (count == 0) return;
                if (block != _block)
                {
                    Flush(queue);
                    _block = block;
                }

                _count += count;
            }

            public void Flush(MessageQueue queue)
            {
                if (_block == null) return;
                queue.FlushDropped(_count, _block.Origin);
                _block.Release(_count);
                _block = null;
                _count = 0;
            }
        }

        private void FlushDropped(int count, TcpConnection origin)
        {
            if (count == 0) return;
            Interlocked.Add(ref _dropped, count);
            origin?.CountDropped(count);
            Diagnostics.PSTcpMetrics.Dropped(origin, count);
        }

        /// <summary>Counts messages that were read but never made it into the queue.</summary>
        internal void CountDropped(TcpConnection origin, int count) => FlushDropped(count, origin);

        private void GrowRing(int needed)
        {
            // The ring grows on demand up to the capacity: a quiet source holds a few entries, not 10,000.
            int size = Math.Max(InitialRingSize, _ring.Length * 2);
            while (size < needed) size *= 2;
            _ring = Unwrapped(_ring, _head, _count, Math.Min(Capacity, size));
            _head = 0;
        }

        private void GrowRuns()
        {
            _runs = Unwrapped(_runs, _runHead, _runCount, Math.Max(4, _runs.Length * 2));
            _runHead = 0;
        }

        // A ring's items, oldest first, at the start of a new array of the given size.
        private static T[] Unwrapped<T>(T[] ring, int head, int count, int size)
        {
            var grown = new T[size];
            int first = Math.Min(count, ring.Length - head);
            Array.Copy(ring, head, grown, 0, first);
            Array.Copy(ring, 0, grown, first, count - first);
            return grown;
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

        /// <summary>One queued message, before a consumer makes it a <see cref="TcpMessage"/>; its block is its run's.</summary>
        private struct Entry
        {
            public int Offset;
            public int Length;
            public long Sequence;
        }

        /// <summary>Consecutive queued messages in one block.</summary>
        private struct Run
        {
            public MessageBlock Block;
            public int Count;
        }

        /// <summary>A batch being queued: its block, where its messages lie, and the first one's sequence.</summary>
        private readonly struct Batch
        {
            public Batch(MessageBlock block, Framing.Frame[] frames, int offset, long firstSequence)
            {
                Block = block;
                Frames = frames;
                Offset = offset;
                FirstSequence = firstSequence;
            }

            public MessageBlock Block { get; }

            public Framing.Frame[] Frames { get; }

            public int Offset { get; }

            public long FirstSequence { get; }
        }
    }
}

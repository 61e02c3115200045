using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>What a consumer hands on, in order: a message, or a warning, error or verbose note about the source.</summary>
    internal enum ConsumedKind { Message, Warning, Error, Verbose }

    /// <summary>
    /// The one consumer loop behind Receive-TcpMessage and the consumer job: takes messages
    /// from a source's queue until -Count, -Until, the -Timeout deadline, the end of the source
    /// or cancellation, and interleaves what else the user must hear of (drops, reported
    /// once; errors the source reports, each once; connection events under -Verbose). It never
    /// writes anywhere itself: its driver does, on the thread allowed to.
    /// </summary>
    internal sealed class MessageConsumer : IDisposable
    {
        /// <summary>
        /// Errors held for the driver at most (here, and in a job's Error stream); beyond that
        /// they are counted (<see cref="SuppressedErrors"/>) and reported once as a warning, so a
        /// source that fails on every message can't grow memory while nobody receives.
        /// </summary>
        public const int MaxPendingErrors = 1000;

        private int _pendingErrors;
        private long _suppressedErrors;
        private int _suppressionReported;
        private readonly IMessageSource _source;
        private readonly MessageQueue _queue;
        private readonly int? _limit;
        private readonly TimeSpan? _timeout;
        private readonly Predicate<TcpMessage> _until;
        private readonly CancellationToken _cancellation;
        // The -Timeout deadline as a token, made by the first asynchronous wait (a job's): a
        // blocking MoveNext measures the time itself and needs no timer.
        private CancellationTokenSource _deadline;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        // Created with the first notice: most receives have none, and an empty ConcurrentQueue
        // (its first segment) was a third of what a `Receive-TcpMessage -Count 1` call cost in PSTcp.
        private ConcurrentQueue<(ConsumedKind Kind, object Value)> _notices;
        private readonly EventHandler<TcpErrorEventArgs> _onError;
        private readonly EventHandler<TcpConnectionEventArgs> _onConnection;
        private TaskCompletionSource<bool> _noticed;
        private TcpException _reportedError;
        private bool _finishing;
        private bool _ended;
        private bool _untilMatched;
        private int _received;

        public MessageConsumer(IMessageSource source, string location, object target, int? limit, TimeSpan? timeout,
            Predicate<TcpMessage> until, bool verbose, CancellationToken cancellation)
        {
            _source = source;
            _queue = source.Queue;
            Location = location;
            Target = target;
            _limit = limit;
            _timeout = timeout;
            _until = until;
            _cancellation = cancellation;
            _onError = (_, e) =>
            {
                _reportedError = e.Error;
                // -Verbose tells the story of the source: a failing handler is part of it.
                if (verbose && e.Error.Kind == TcpErrorKind.HandlerFailed) Notice(ConsumedKind.Verbose, e.Error.Message);
                if (Interlocked.Increment(ref _pendingErrors) > MaxPendingErrors)
                {
                    Interlocked.Decrement(ref _pendingErrors);
                    SuppressError();
                    return;
                }

                Notice(ConsumedKind.Error, TcpErrors.From(e.Error, (object)e.Connection ?? e.Error));
            };
            source.ErrorReported += _onError;
            if (verbose)
            {
                _onConnection = (_, e) => Notice(ConsumedKind.Verbose, e.ToString());
                source.ConnectionChanged += _onConnection;
            }
        }

        private ConcurrentQueue<(ConsumedKind Kind, object Value)> Notices
        {
            get
            {
                var notices = Volatile.Read(ref _notices);
                if (notices != null) return notices;
                Interlocked.CompareExchange(ref _notices, new ConcurrentQueue<(ConsumedKind, object)>(), null);
                return Volatile.Read(ref _notices);
            }
        }

        public string Name => _source.Name;

        /// <summary>Where the source is (an endpoint), for the job's Location.</summary>
        public string Location { get; }

        /// <summary>The server or connection, as the target of error records.</summary>
        public object Target { get; }

        public MessageQueue Queue => _queue;

        /// <summary>Errors counted but not kept, because <see cref="MaxPendingErrors"/> were pending.</summary>
        public long SuppressedErrors => Interlocked.Read(ref _suppressedErrors);

        /// <summary>
        /// One more error is counted, not kept (the driver's own store is full, or this one's);
        /// the first time, a warning says so.
        /// </summary>
        public void SuppressError()
        {
            Interlocked.Increment(ref _suppressedErrors);
            if (Interlocked.Exchange(ref _suppressionReported, 1) == 0)
            {
                Notice(ConsumedKind.Warning,
                    $"{MaxPendingErrors:N0} errors from {Name} are waiting to be received: further errors are counted, not kept " +
                    "(the consumer job's SuppressedErrorCount). Receive them (Receive-Job) or fix their cause.");
            }
        }

        /// <summary>Messages handed on so far.</summary>
        public int Received => Volatile.Read(ref _received);

        /// <summary>Whether the loop ended because the source ended with an error (a client connection's reset, say).</summary>
        public bool EndedWithError { get; private set; }

        public ConsumedKind CurrentKind { get; private set; }

        /// <summary>The current <see cref="TcpMessage"/>, <see cref="ErrorRecord"/>, or text of a warning or verbose note.</summary>
        public object Current { get; private set; }

        /// <summary>
        /// Moves to the next item; false at the end. Cancellation (Stop-Job, Ctrl+C) throws
        /// <see cref="OperationCanceledException"/>.
        /// </summary>
        public ValueTask<bool> MoveNextAsync()
        {
            if (TryNext()) return new ValueTask<bool>(true);
            if (_ended) return new ValueTask<bool>(false);
            return WaitAndMoveNextAsync();
        }

        /// <summary>
        /// <see cref="MoveNextAsync"/> for a driver that blocks its own thread (Receive-TcpMessage,
        /// Invoke-TcpRequest): woken straight from the thread that queued the message or the
        /// notice, the deadline kept by the wait's own timeout (no timer, no linked token).
        /// Cancellation throws <see cref="OperationCanceledException"/>.
        /// </summary>
        public bool MoveNext()
        {
            var waitFor = new Task[2];
            while (true)
            {
                if (TryNext()) return true;
                if (_ended) return false;
                _cancellation.ThrowIfCancellationRequested();
                var noticed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref _noticed, noticed);
                // A notice that came before the signal was armed is handed on now, not waited for.
                if (Volatile.Read(ref _notices)?.IsEmpty == false) continue;
                var readable = _queue.ReadableSignal();
                if (readable == null) continue;
                int wait = Timeout.Infinite;
                if (_timeout.HasValue)
                {
                    var left = _timeout.Value - _clock.Elapsed;
                    if (left <= TimeSpan.Zero)
                    {
                        Finish(timedOut: true);
                        continue;
                    }

                    wait = (int)Math.Min(int.MaxValue, Math.Ceiling(left.TotalMilliseconds));
                }

                waitFor[0] = readable;
                waitFor[1] = noticed.Task;
                Task.WaitAny(waitFor, wait, _cancellation);
            }
        }

        private async ValueTask<bool> WaitAndMoveNextAsync()
        {
            if (_timeout.HasValue && _deadline == null)
            {
                // Only a -Timeout needs a token of its own (linking one costs a registration per call).
                var left = _timeout.Value - _clock.Elapsed;
                _deadline = CancellationTokenSource.CreateLinkedTokenSource(_cancellation);
                _deadline.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }

            while (true)
            {
                _cancellation.ThrowIfCancellationRequested();
                var noticed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                Volatile.Write(ref _noticed, noticed);
                // A notice that came before the signal was armed is handed on now, not waited for.
                if (Volatile.Read(ref _notices)?.IsEmpty == false && TryNext()) return true;
                try
                {
                    var wait = _queue.WaitToReadAsync(_deadline?.Token ?? _cancellation);
                    if (!wait.IsCompleted)
                    {
                        var waiting = wait.AsTask();
                        if (await Task.WhenAny(waiting, noticed.Task).ConfigureAwait(false) == waiting)
                        {
                            await waiting.ConfigureAwait(false);
                        }
                        else
                        {
                            Observe(waiting);
                        }
                    }
                    else
                    {
                        await wait.ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (!_cancellation.IsCancellationRequested)
                {
                    // The -Timeout deadline passed.
                    Finish(timedOut: true);
                }

                if (TryNext()) return true;
                if (_ended) return false;
            }
        }

        /// <summary>The next item that needs no wait: a notice, a message, or what ends the loop.</summary>
        private bool TryNext()
        {
            var notices = Volatile.Read(ref _notices);
            if (notices != null && notices.TryDequeue(out var notice))
            {
                if (notice.Kind == ConsumedKind.Error)
                {
                    Interlocked.Decrement(ref _pendingErrors);
                }

                CurrentKind = notice.Kind;
                Current = notice.Value;
                return true;
            }

            if (_finishing)
            {
                _ended = true;
                return false;
            }

            var drops = TakeDropWarning();
            if (drops != null)
            {
                CurrentKind = ConsumedKind.Warning;
                Current = drops;
                return true;
            }

            if (_limit.HasValue && _received >= _limit.Value)
            {
                Finish(timedOut: false);
                return TryNext();
            }

            if (_queue.TryRead(out var message))
            {
                Interlocked.Increment(ref _received);
                CurrentKind = ConsumedKind.Message;
                Current = message;
                if (_until != null && _until(message))
                {
                    _untilMatched = true;
                    Finish(timedOut: false);
                }

                return true;
            }

            if (_queue.IsCompleted && _queue.Count == 0)
            {
                Finish(timedOut: false);
                return TryNext();
            }

            return false;
        }

        /// <summary>Queues the closing notes: how the source ended, or that the deadline passed short of -Count/-Until.</summary>
        private void Finish(bool timedOut)
        {
            if (_finishing) return;
            _finishing = true;
            Unsubscribe();
            bool sourceEnded = _queue.IsCompleted && _queue.Count == 0;
            var error = sourceEnded ? _source.Error : null;
            EndedWithError = error != null;
            if (error != null && !ReferenceEquals(error, _reportedError))
            {
                Interlocked.Increment(ref _pendingErrors);
                Notices.Enqueue((ConsumedKind.Error, TcpErrors.From(error, Target)));
            }

            bool shortOfGoal = (_limit.HasValue && _received < _limit.Value) || (_until != null && !_untilMatched);
            if (timedOut && shortOfGoal)
            {
                var wanted = _limit.HasValue ? $"{_received:N0} of {_limit.Value:N0} message(s)" : $"{_received:N0} message(s), none matching -Until,";
                Interlocked.Increment(ref _pendingErrors);
                Notices.Enqueue((ConsumedKind.Error, TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                    $"Received {wanted} from {Name} in {_clock.Elapsed.TotalSeconds:0.###} s.", Target)));
            }

            var drops = TakeDropWarning();
            if (drops != null) Notices.Enqueue((ConsumedKind.Warning, drops));
        }

        private string TakeDropWarning()
        {
            long drops = _queue.TakeUnreportedDrops();
            if (drops <= 0) return null;
            if (_queue.FullMode == QueueFullMode.Wait)
            {
                // Wait mode drops nothing for room: these were read when their connection was
                // closed, reset or stopped before they could be queued.
                return $"{drops:N0} message(s) from {Name} were dropped because their connection was closed, reset or stopped " +
                    $"while they waited for room in its full queue (capacity {_queue.Capacity:N0}, mode Wait). Consume faster or raise -QueueCapacity.";
            }

            return $"{drops:N0} message(s) from {Name} were dropped because its queue was full " +
                $"(capacity {_queue.Capacity:N0}, mode {_queue.FullMode}). Consume faster, raise -QueueCapacity, or use -QueueFullMode Wait.";
        }

        private void Notice(ConsumedKind kind, object value)
        {
            Notices.Enqueue((kind, value));
            Volatile.Read(ref _noticed)?.TrySetResult(true);
        }

        private static void Observe(Task task) => task.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);

        private void Unsubscribe()
        {
            _source.ErrorReported -= _onError;
            if (_onConnection != null) _source.ConnectionChanged -= _onConnection;
        }

        public void Dispose()
        {
            Unsubscribe();
            _deadline?.Dispose();
        }
    }
}

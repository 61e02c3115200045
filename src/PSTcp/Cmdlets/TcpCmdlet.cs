using System;
using System.Diagnostics;
using System.Globalization;
using System.Management.Automation;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// What every PSTcp cmdlet shares: Ctrl+C cancels its waits, and its TimeSpan parameters
    /// are checked the same way before it runs.
    /// </summary>
    public abstract class TcpCmdlet : PSCmdlet
    {
        /// <summary>The longest time parameter: what Task.Delay and CancelAfter accept (~24.8 days).</summary>
        internal static readonly TimeSpan MaxTime = TimeSpan.FromMilliseconds(int.MaxValue);

        /// <summary>A send that took nothing for this long, while its own Wait-mode queue is full, gets a warning.</summary>
        internal static readonly TimeSpan StallWarningAfter = TimeSpan.FromSeconds(3);

        private static readonly TimeSpan WaitSlice = TimeSpan.FromMilliseconds(250);

        private readonly CancellationTokenSource _stopping = new CancellationTokenSource();
        private bool _warnedStall;

        /// <summary>Cancelled by Ctrl+C (StopProcessing).</summary>
        protected internal CancellationToken Cancellation => _stopping.Token;

        protected override void StopProcessing() => _stopping.Cancel();

        /// <summary>
        /// Refuses time parameters that are zero (unless the parameter allows it), under a
        /// millisecond, negative or over <see cref="MaxTime"/>, with InvalidArgument. Cmdlets
        /// that override this call it first.
        /// </summary>
        protected override void BeginProcessing()
        {
            foreach (var bound in MyInvocation.BoundParameters)
            {
                if (!(bound.Value is TimeSpan value)) continue;
                var attribute = TimeAttribute(GetType(), bound.Key);
                if (attribute == null) continue;
                var problem = CheckTime(value, attribute.AllowZero);
                if (problem != null)
                {
                    ThrowTerminatingError(TcpErrors.InvalidArgument($"-{bound.Key} {problem}", value));
                }
            }
        }

        // Per cmdlet type and parameter: reflection per call (GetCustomAttribute allocates) cost a
        // loop of `Receive-TcpMessage -Timeout 5` a few percent of every call.
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Type, string), TimeSpanTransformationAttribute> s_timeAttributes =
            new System.Collections.Concurrent.ConcurrentDictionary<(Type, string), TimeSpanTransformationAttribute>();

        private static TimeSpanTransformationAttribute TimeAttribute(Type type, string parameter) =>
            s_timeAttributes.GetOrAdd((type, parameter), key =>
                key.Item1.GetProperty(key.Item2, BindingFlags.Public | BindingFlags.Instance)?.GetCustomAttribute<TimeSpanTransformationAttribute>());

        /// <summary>Why a time value is refused, or null when it is fine.</summary>
        internal static string CheckTime(TimeSpan value, bool allowZero)
        {
            if (value == TimeSpan.Zero && allowZero) return null;
            if (value < TimeSpan.Zero) return $"can't be negative ({value}).";
            if (value < TimeSpan.FromMilliseconds(1))
            {
                return (allowZero ? "must be 0 (none) or at least 1 ms" : "must be at least 1 ms") +
                    $"; {value.TotalSeconds.ToString("0.#########", CultureInfo.InvariantCulture)} s was given (a bare number means seconds: 5, 0.5).";
            }

            if (value > MaxTime) return $"is too large: at most {MaxTime.TotalDays:0.#} days.";
            return null;
        }

        /// <summary>Waits on the pipeline thread for a core task; Ctrl+C ends the wait.</summary>
        protected internal T Wait<T>(Task<T> task)
        {
            Wait((Task)task);
            return task.Result;
        }

        protected internal void Wait(Task task)
        {
            try
            {
                task.Wait(Cancellation);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                ThrowInner(e);
            }
        }

        /// <summary>
        /// Waits up to <paramref name="timeout"/> for a task, Ctrl+C ending the wait; true when
        /// it finished (its failure, if any, is left for <see cref="Wait(Task)"/> to throw).
        /// </summary>
        protected internal bool WaitWithin(Task task, TimeSpan timeout)
        {
            try
            {
                return task.IsCompleted || WaitHandleWithin(task, timeout);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }

        private bool WaitHandleWithin(Task task, TimeSpan timeout)
        {
            var finished = Task.WhenAny(task, Task.Delay(timeout, Cancellation));
            finished.Wait(Cancellation);
            return task.IsCompleted;
        }

        /// <summary>
        /// Waits for a send on <paramref name="connection"/> like <see cref="Wait(Task)"/>, in
        /// slices, so that a send stuck behind its own connection's full Wait-mode queue gets a
        /// warning, written here on the pipeline thread, instead of silence.
        /// </summary>
        protected internal void WaitForSend(Task send, TcpConnection connection)
        {
            var clock = Stopwatch.StartNew();
            long sent = connection.BytesSent;
            try
            {
                while (!send.Wait((int)WaitSlice.TotalMilliseconds, Cancellation))
                {
                    long now = connection.BytesSent;
                    if (now != sent)
                    {
                        sent = now;
                        clock.Restart();
                    }
                    else if (!_warnedStall && clock.Elapsed >= StallWarningAfter && IsOwnQueueFull(connection))
                    {
                        _warnedStall = true;
                        WriteWarning(StallWarning(connection, clock.Elapsed));
                    }
                }
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
            catch (AggregateException e) when (e.InnerExceptions.Count == 1)
            {
                ThrowInner(e);
            }
        }

        private static bool IsOwnQueueFull(TcpConnection connection)
        {
            var queue = connection.Queue;
            return queue != null && queue.FullMode == QueueFullMode.Wait && queue.Count >= queue.Capacity;
        }

        internal static string StallWarning(TcpConnection connection, TimeSpan stalled) =>
            $"Sending on {connection.Name} has made no progress for {stalled.TotalSeconds:0} s because its own queue is full " +
            $"({connection.Queue.Count:N0} of {connection.Queue.Capacity:N0} messages, -QueueFullMode Wait): it stopped reading, " +
            "so the peer, which answers what it gets, stopped reading from it. Nothing is lost. Take the messages while sending " +
            "(Receive-Job, Receive-TcpMessage), for example by sending from a thread job (Start-ThreadJob), or connect with " +
            "-QueueFullMode DropOldest if the answers don't matter.";

        private void ThrowInner(AggregateException e)
        {
            var inner = e.InnerException;
            if (inner is OperationCanceledException && Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner).Throw();
        }

        protected internal void WriteTcpError(Exception error, object target) => WriteError(TcpErrors.From(error, target));

        protected internal void ThrowTcpError(Exception error, object target) => ThrowTerminatingError(TcpErrors.From(error, target));
    }
}

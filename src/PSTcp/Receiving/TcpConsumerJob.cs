using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// A consumer job: runs the shared <see cref="MessageConsumer"/> loop in the background and
    /// hands what it takes to Receive-Job. It reads at most one queue's capacity (and never more
    /// than <see cref="MaxReadAhead"/>) ahead of its reader, so a job nobody receives from holds
    /// bounded memory and the queue's full-mode applies.
    /// </summary>
    public sealed class TcpConsumerJob : Job
    {
        public const string JobTypeName = "TcpConsumerJob";

        // How often a job whose output is full looks whether Receive-Job took some: the output
        // collection raises no event when it is drained.
        private static readonly TimeSpan FullOutputPoll = TimeSpan.FromMilliseconds(1);

        /// <summary>
        /// Receive-Job drains the output collection from its front one item at a time, which
        /// costs time in the square of what it holds; the rest waits in the bounded queue.
        /// </summary>
        public const int MaxReadAhead = 4096;

        private readonly MessageConsumer _consumer;
        private readonly CancellationTokenSource _stop;
        private Task _run;
        private int _finished;

        internal TcpConsumerJob(MessageConsumer consumer, CancellationTokenSource stop, string command, string name)
            : base(command, name)
        {
            _consumer = consumer;
            _stop = stop;
            PSJobTypeName = JobTypeName;
        }

        public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0;

        public override string Location => _consumer.Location;

        public override string StatusMessage => $"{_consumer.Received:N0} message(s) from {_consumer.Name}";

        /// <summary>Name of the server or connection this job consumes.</summary>
        public string Source => _consumer.Name;

        /// <summary>Errors counted but not kept because 1,000 were waiting for Receive-Job (reported once as a warning).</summary>
        public long SuppressedErrorCount => _consumer.SuppressedErrors;

        internal void Start()
        {
            TcpRegistry.Add(this);
            SetJobState(JobState.Running);
            _run = Task.Run(RunAsync);
        }

        private async Task RunAsync()
        {
            var token = _stop.Token;
            var queue = _consumer.Queue;
            try
            {
                while (true)
                {
                    while (Output.Count >= ReadAhead(queue))
                    {
                        await Task.Delay(FullOutputPoll, token).ConfigureAwait(false);
                    }

                    var next = _consumer.MoveNextAsync();
                    if (!(next.IsCompletedSuccessfully ? next.Result : await next.ConfigureAwait(false))) break;
                    switch (_consumer.CurrentKind)
                    {
                        case ConsumedKind.Message:
                            Output.Add(PSObject.AsPSObject(_consumer.Current));
                            break;
                        case ConsumedKind.Error:
                            // At most MaxPendingErrors unreceived: the rest is counted (and warned of once).
                            if (Error.Count >= MessageConsumer.MaxPendingErrors) _consumer.SuppressError();
                            else Error.Add((ErrorRecord)_consumer.Current);
                            break;
                        case ConsumedKind.Warning:
                            Warning.Add(new WarningRecord((string)_consumer.Current));
                            break;
                        default:
                            Verbose.Add(new VerboseRecord((string)_consumer.Current));
                            break;
                    }
                }

                // How a client connection ended (reset, line too long) fails the job.
                Finish(_consumer.EndedWithError ? JobState.Failed : JobState.Completed);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                Finish(JobState.Stopped);
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException e)
            {
                // -Until that backtracks without end.
                Error.Add(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                    $"Matching -Until '{e.Pattern}' took over {e.MatchTimeout.TotalSeconds:0.###} s; the job gave up. Simplify the pattern (it backtracks).", _consumer.Target));
                Finish(JobState.Failed);
            }
            catch (Exception e) when (e is ObjectDisposedException || e is InvalidOperationException)
            {
                // Remove-Job disposed (or closed) the streams while something was being handed over.
                Finish(JobState.Stopped);
            }
        }

        /// <summary>
        /// How much the job may hold unreceived: at most <see cref="MaxReadAhead"/> while the source
        /// is live; once it has ended, whatever is left (never more than the queue held), so the
        /// job can complete without waiting for Receive-Job.
        /// </summary>
        private static int ReadAhead(MessageQueue queue) =>
            queue.IsCompleted ? int.MaxValue : Math.Min(queue.Capacity, MaxReadAhead);

        private void Finish(JobState state)
        {
            if (Interlocked.Exchange(ref _finished, 1) != 0) return;
            _consumer.Dispose();
            TcpRegistry.Remove(this);
            SetJobState(state);
        }

        /// <summary>Stop-Job: cancels the wait and returns; messages not yet taken stay queued.</summary>
        public override void StopJob()
        {
            if (Volatile.Read(ref _finished) != 0) return;
            SetJobState(JobState.Stopping);
            _stop.Cancel();
            // The loop only waits on the cancelled token, so it ends at once; never wait on
            // anything that needs the pipeline thread (Stop-Job runs on it).
            _run?.Wait(TimeSpan.FromMilliseconds(500));
            Finish(JobState.Stopped);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                if (Volatile.Read(ref _finished) == 0)
                {
                    _stop.Cancel();
                    Finish(JobState.Stopped);
                }

                _stop.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

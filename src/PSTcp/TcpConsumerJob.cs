using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// A consumer job: takes messages from a server's or connection's queue in the background
    /// and hands them to Receive-Job. It reads at most one queue's capacity (and never more than
    /// <see cref="MaxReadAhead"/>) ahead of its reader,
    /// so a job nobody receives from holds bounded memory and the queue's full-mode applies.
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

        private readonly MessageSource _source;
        private readonly int? _limit;
        private readonly TimeSpan? _timeout;
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        private readonly EventHandler<TcpErrorEventArgs> _onError;
        private readonly EventHandler<TcpConnectionEventArgs> _onConnection;
        private Task _run;
        private int _finished;
        private long _received;

        internal TcpConsumerJob(MessageSource source, int? limit, TimeSpan? timeout, string command, string name, bool verbose = false)
            : base(command, name)
        {
            _source = source;
            _limit = limit;
            _timeout = timeout;
            PSJobTypeName = JobTypeName;
            _onError = (_, e) => AddError(TcpErrors.From(e.Error, (object)e.Connection ?? e.Error));
            // Connection events go to the verbose stream only when asked (-Verbose): it has no cap.
            _onConnection = verbose ? (_, e) => AddVerbose(e.ToString()) : (EventHandler<TcpConnectionEventArgs>)null;
        }

        public override bool HasMoreData => Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0;

        public override string Location => _source.Location;

        public override string StatusMessage => $"{Interlocked.Read(ref _received)} message(s) from {_source.Name}";

        /// <summary>Name of the server or connection this job consumes.</summary>
        public string Source => _source.Name;

        internal void Start()
        {
            TcpRegistry.Add(this);
            _source.Queue.ErrorReported += _onError;
            if (_onConnection != null) _source.Queue.ConnectionChanged += _onConnection;
            SetJobState(JobState.Running);
            _run = Task.Run(RunAsync);
        }

        private async Task RunAsync()
        {
            var queue = _source.Queue;
            var reader = queue.Reader;
            var token = _stop.Token;
            try
            {
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(token))
                {
                    if (_timeout.HasValue) deadline.CancelAfter(_timeout.Value);
                    try
                    {
                        while (!LimitReached && await reader.WaitToReadAsync(deadline.Token).ConfigureAwait(false))
                        {
                            ReportDrops();
                            while (Output.Count >= ReadAhead(queue))
                            {
                                await Task.Delay(FullOutputPoll, deadline.Token).ConfigureAwait(false);
                            }

                            int readAhead = ReadAhead(queue);
                            while (!LimitReached && Output.Count < readAhead && reader.TryRead(out var message))
                            {
                                Output.Add(PSObject.AsPSObject(message));
                                Interlocked.Increment(ref _received);
                            }
                        }
                    }
                    catch (OperationCanceledException) when (!token.IsCancellationRequested)
                    {
                        // The -Timeout passed: too few messages is an error only with -Count.
                        if (_limit.HasValue && !LimitReached)
                        {
                            AddError(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                                $"Received {Interlocked.Read(ref _received)} of {_limit} message(s) from {_source.Name} in {_timeout.Value.TotalSeconds:0.###} s.", _source.Target));
                        }
                    }
                }

                ReportDrops();
                var error = reader.Completion.IsCompleted && !LimitReached ? MessageSource.CompletionError(reader.Completion) : null;
                if (error != null)
                {
                    AddError(TcpErrors.From(error, _source.Target));
                    Finish(JobState.Failed);
                }
                else
                {
                    Finish(JobState.Completed);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                Finish(JobState.Stopped);
            }
            catch (Exception e) when (!(e is ObjectDisposedException))
            {
                AddError(new ErrorRecord(e, "ConsumerFailed", ErrorCategory.NotSpecified, _source.Target));
                Finish(JobState.Failed);
            }
            catch (ObjectDisposedException)
            {
                // Remove-Job disposed the streams while a message was being handed over.
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

        private bool LimitReached => _limit.HasValue && Interlocked.Read(ref _received) >= _limit.Value;

        private void ReportDrops()
        {
            var warning = _source.TakeDropWarning();
            if (warning != null)
            {
                try { Warning.Add(warning); } catch (ObjectDisposedException) { }
            }
        }

        private void AddError(ErrorRecord error)
        {
            // A finished job's streams are closed; errors go in first, then the state.
            try { Error.Add(error); } catch (ObjectDisposedException) { } catch (InvalidOperationException) { }
        }

        private void AddVerbose(string message)
        {
            try { Verbose.Add(new VerboseRecord(message)); } catch (ObjectDisposedException) { } catch (InvalidOperationException) { }
        }

        private void Finish(JobState state)
        {
            if (Interlocked.Exchange(ref _finished, 1) != 0) return;
            _source.Queue.ErrorReported -= _onError;
            if (_onConnection != null) _source.Queue.ConnectionChanged -= _onConnection;
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

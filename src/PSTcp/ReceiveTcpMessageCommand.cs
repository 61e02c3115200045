using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Management.Automation;
using System.Threading;
using System.Threading.Channels;

namespace PSTcp.Commands
{
    /// <summary>
    /// Receive-TcpMessage: takes queued messages of a server or client connection, here and now
    /// or (-AsJob) in a background consumer job.
    /// </summary>
    [Cmdlet(VerbsCommunications.Receive, "TcpMessage", DefaultParameterSetName = FromConnection)]
    [OutputType(typeof(TcpMessage))]
    [OutputType(typeof(Job), ParameterSetName = new[] { FromConnection, FromServer })]
    public sealed class ReceiveTcpMessageCommand : TcpCmdlet
    {
        private const string FromConnection = "Connection";
        private const string FromServer = "Server";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = FromConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = FromServer)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public TcpServer Server { get; set; }

        /// <summary>Stop after this many messages.</summary>
        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int Count { get; set; }

        /// <summary>Stop after this long; with -Count, too few messages by then is a ReceiveTimeout error.</summary>
        [Parameter, TimeSpanTransformation]
        public TimeSpan Timeout { get; set; }

        [Parameter]
        public SwitchParameter AsJob { get; set; }

        /// <summary>Name of the consumer job.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        protected override void ProcessRecord()
        {
            if (Timeout < TimeSpan.Zero)
            {
                ThrowTcpError(new ArgumentException("Timeout can't be negative.", nameof(Timeout)), Timeout);
            }

            if (Server != null && !Server.Options.QueueMessages)
            {
                ThrowTerminatingError(new ErrorRecord(
                    new InvalidOperationException($"{Server.Name} was started with -NoQueue: it keeps no messages to receive."),
                    "ServerKeepsNoMessages", ErrorCategory.InvalidOperation, Server));
            }

            var source = Server != null ? new MessageSource(Server) : new MessageSource(Connection);
            var limit = MyInvocation.BoundParameters.ContainsKey(nameof(Count)) ? Count : (int?)null;
            var timeout = MyInvocation.BoundParameters.ContainsKey(nameof(Timeout)) ? Timeout : (TimeSpan?)null;
            if (AsJob)
            {
                var verbose = MyInvocation.BoundParameters.TryGetValue("Verbose", out var v) && ((SwitchParameter)v).IsPresent;
                var job = new TcpConsumerJob(source, limit, timeout, MyInvocation.Line, Name, verbose);
                JobRepository.Add(job);
                job.Start();
                WriteVerbose($"Consumer job {job.Id} ({job.Name}) takes messages from {source.Name}.");
                WriteObject(job);
                return;
            }

            Receive(source, limit, timeout);
        }

        private void Receive(MessageSource source, int? limit, TimeSpan? timeout)
        {
            // Errors arrive on socket threads; only this thread may write them.
            var errors = new ConcurrentQueue<TcpErrorEventArgs>();
            EventHandler<TcpErrorEventArgs> onError = (_, e) => errors.Enqueue(e);
            source.Queue.ErrorReported += onError;
            var events = new ConcurrentQueue<TcpConnectionEventArgs>();
            EventHandler<TcpConnectionEventArgs> onConnection = (_, e) => events.Enqueue(e);
            source.Queue.ConnectionChanged += onConnection;
            var clock = Stopwatch.StartNew();
            int received = 0;
            try
            {
                var reader = source.Queue.Reader;
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(Cancellation))
                {
                    if (timeout.HasValue) deadline.CancelAfter(timeout.Value);
                    WriteDropWarning(source);
                    while (limit == null || received < limit)
                    {
                        while ((limit == null || received < limit) && reader.TryRead(out var message))
                        {
                            WriteObject(message);
                            received++;
                        }

                        WriteErrors(errors);
                        WriteEvents(events);
                        WriteDropWarning(source);
                        if (limit != null && received >= limit) break;
                        if (!WaitForMessages(reader, deadline.Token)) break;
                    }
                }

                if (reader.Completion.IsCompleted && (limit == null || received < limit))
                {
                    var error = MessageSource.CompletionError(reader.Completion);
                    if (error != null) WriteTcpError(error, source.Target);
                }
            }
            finally
            {
                source.Queue.ErrorReported -= onError;
                source.Queue.ConnectionChanged -= onConnection;
            }

            WriteEvents(events);

            WriteErrors(errors);
            if (limit != null && received < limit && !(source.Queue.Reader.Completion.IsCompleted))
            {
                WriteError(TcpErrors.From(TcpErrorKind.ReceiveTimeout,
                    $"Received {received} of {limit} message(s) from {source.Name} in {clock.Elapsed.TotalSeconds:0.###} s.", source.Target));
            }
        }

        /// <summary>Waits for the next message; false when the source ended or the deadline passed.</summary>
        private bool WaitForMessages(ChannelReader<TcpMessage> reader, CancellationToken deadline)
        {
            try
            {
                return reader.WaitToReadAsync(deadline).AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                if (Cancellation.IsCancellationRequested) throw new PipelineStoppedException();
                return false;
            }
            catch (Exception)
            {
                // The queue ended with an error: reported by the caller once drained.
                return false;
            }
        }

        private void WriteErrors(ConcurrentQueue<TcpErrorEventArgs> errors)
        {
            while (errors.TryDequeue(out var e))
            {
                WriteError(TcpErrors.From(e.Error, (object)e.Connection ?? e.Error));
            }
        }

        private void WriteEvents(ConcurrentQueue<TcpConnectionEventArgs> events)
        {
            while (events.TryDequeue(out var e))
            {
                WriteVerbose(e.ToString());
            }
        }

        private void WriteDropWarning(MessageSource source)
        {
            var warning = source.TakeDropWarning();
            if (warning != null) WriteWarning(warning.Message);
        }
    }
}

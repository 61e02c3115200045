using System;
using System.Management.Automation;
using System.Threading;

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

            var limit = MyInvocation.BoundParameters.ContainsKey(nameof(Count)) ? Count : (int?)null;
            var timeout = MyInvocation.BoundParameters.ContainsKey(nameof(Timeout)) ? Timeout : (TimeSpan?)null;
            var verbose = MyInvocation.BoundParameters.TryGetValue("Verbose", out var v) && ((SwitchParameter)v).IsPresent;
            if (AsJob)
            {
                var stop = new CancellationTokenSource();
                var job = new TcpConsumerJob(NewConsumer(limit, timeout, verbose, stop.Token), stop, MyInvocation.Line, Name);
                JobRepository.Add(job);
                job.Start();
                WriteVerbose($"Consumer job {job.Id} ({job.Name}) takes messages from {job.Source}.");
                WriteObject(job);
                return;
            }

            using (var consumer = NewConsumer(limit, timeout, verbose, Cancellation))
            {
                Receive(consumer);
            }
        }

        private MessageConsumer NewConsumer(int? limit, TimeSpan? timeout, bool verbose, CancellationToken cancellation)
        {
            IMessageSource source = Server != null ? Server.AsSource() : Connection.AsSource();
            var location = Server != null ? Server.LocalEndPoint.ToString() : Connection.RemoteEndPoint.ToString();
            return new MessageConsumer(source, location, (object)Server ?? Connection, limit, timeout, until: null, verbose, cancellation);
        }

        /// <summary>Runs the consumer loop here, writing what it takes on the pipeline thread.</summary>
        private void Receive(MessageConsumer consumer)
        {
            while (true)
            {
                var next = consumer.MoveNextAsync();
                bool more;
                try
                {
                    more = next.IsCompletedSuccessfully ? next.Result : next.AsTask().GetAwaiter().GetResult();
                }
                catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
                {
                    throw new PipelineStoppedException();
                }

                if (!more) return;
                switch (consumer.CurrentKind)
                {
                    case ConsumedKind.Message: WriteObject(consumer.Current); break;
                    case ConsumedKind.Error: WriteError((ErrorRecord)consumer.Current); break;
                    case ConsumedKind.Warning: WriteWarning((string)consumer.Current); break;
                    default: WriteVerbose((string)consumer.Current); break;
                }
            }
        }
    }
}

using System;
using System.Management.Automation;
using System.Threading;

namespace PSTcp.Commands
{
    /// <summary>
    /// Receive-TcpMessage: takes queued messages of a server or client connection, here and now
    /// or (-AsJob) in a background consumer job.
    /// </summary>
    [Cmdlet(VerbsCommunications.Receive, "TcpMessage", DefaultParameterSetName = FromConnection, HelpUri = HelpLinks.Base + "Receive-TcpMessage.md")]
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

        /// <summary>Stop after the first message whose Text matches this regex (on a Raw connection: a stream read up to the match).</summary>
        [Parameter]
        [ValidateNotNull]
        public string Until { get; set; }

        [Parameter]
        public SwitchParameter SimpleMatch { get; set; }

        [Parameter]
        public SwitchParameter CaseSensitive { get; set; }

        /// <summary>On a Raw connection: one message of exactly this many bytes (0 to 2 GiB - 57; 0 returns an empty message at once).</summary>
        [Parameter]
        [ValidateRange(0L, long.MaxValue)]
        public long ByteCount { get; set; }

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
                    TcpErrors.ServerKeepsNoMessages, ErrorCategory.InvalidOperation, Server));
            }

            var limit = MyInvocation.BoundParameters.ContainsKey(nameof(Count)) ? Count : (int?)null;
            var timeout = MyInvocation.BoundParameters.ContainsKey(nameof(Timeout)) ? Timeout : (TimeSpan?)null;
            var verbose = MyInvocation.BoundParameters.TryGetValue("Verbose", out var v) && ((SwitchParameter)v).IsPresent;
            var goal = NewGoal(limit);
            if (AsJob)
            {
                if (goal.IsStream)
                {
                    ThrowTcpError(new ArgumentException("A stream read (-Until or -ByteCount on a Raw connection) runs here, not as a job.", nameof(AsJob)), Connection);
                }

                var stop = new CancellationTokenSource();
                var job = new TcpConsumerJob(NewConsumer(limit, timeout, goal.Until, verbose, stop.Token), stop, MyInvocation.Line, Name);
                JobRepository.Add(job);
                job.Start();
                WriteVerbose($"Consumer job {job.Id} ({job.Name}) takes messages from {job.Source}.");
                WriteObject(job);
                return;
            }

            // Handler failures since the last look at this server: the test sees them here.
            HandlerFailureReport.WriteUnseen(this, Server ?? Connection?.Server);

            // Here and now: the shared consumer loop, run by ReceiveLoop with the goal (-Until, -ByteCount).
            ReceiveLoop.Receive(this, Source, Location, (object)Server ?? Connection, goal, timeout, verbose);
        }

        // A conversation's connection reads its own messages, not its server's shared queue.
        private IMessageSource Source => Server != null ? Server.AsSource() : ConversationLineHandler.SourceFor(Connection) ?? Connection.AsSource();

        private string Location => Server != null ? Server.LocalEndPoint.ToString() : Connection.RemoteEndPoint.ToString();

        private MessageConsumer NewConsumer(int? limit, TimeSpan? timeout, Predicate<TcpMessage> until, bool verbose, CancellationToken cancellation) =>
            new MessageConsumer(Source, Location, (object)Server ?? Connection, limit, timeout, until, verbose, cancellation);

        /// <summary>-Count, -Until and -ByteCount checked against the source (stream reads need a Raw connection).</summary>
        private ReceiveGoal NewGoal(int? limit)
        {
            var byteCount = MyInvocation.BoundParameters.ContainsKey(nameof(ByteCount)) ? ByteCount : (long?)null;
            try
            {
                return ReceiveGoal.Create(limit, Until, SimpleMatch, CaseSensitive, byteCount, Connection);
            }
            catch (ArgumentException e)
            {
                ThrowTcpError(e, (object)Server ?? Connection);
                return null;
            }
        }
    }
}

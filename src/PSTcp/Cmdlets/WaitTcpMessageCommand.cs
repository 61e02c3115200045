using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Runtime.CompilerServices;

namespace PSTcp.Commands
{
    /// <summary>
    /// Wait-TcpMessage: waits until a server (or connection) has received -Count messages whose
    /// Text matches the -Match wildcard, and writes them; past -Timeout it fails with
    /// ReceiveTimeout, naming what was expected beside every message that did arrive. Messages
    /// are taken from the queue as Receive-TcpMessage takes them; those that matched nothing are
    /// kept, so a later Wait-TcpMessage on the same source still finds them (assertions in any order).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Wait, "TcpMessage", DefaultParameterSetName = FromServer, HelpUri = HelpLinks.Base + "Wait-TcpMessage.md")]
    [OutputType(typeof(TcpMessage))]
    public sealed class WaitTcpMessageCommand : TcpCmdlet
    {
        private const string FromConnection = "Connection";
        private const string FromServer = "Server";
        internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

        // Messages a wait took but that matched nothing, per source, for the next wait.
        private static readonly ConditionalWeakTable<object, List<TcpMessage>> PassedOver = new ConditionalWeakTable<object, List<TcpMessage>>();

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = FromServer)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public TcpServer Server { get; set; }

        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = FromConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        /// <summary>A wildcard pattern matched against each message's Text (case-insensitive, like -like).</summary>
        [Parameter(Position = 1)]
        [ValidateNotNull]
        [SupportsWildcards]
        public string Match { get; set; } = "*";

        /// <summary>How many matching messages to wait for.</summary>
        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int Count { get; set; } = 1;

        /// <summary>How long to wait in all.</summary>
        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        protected override void ProcessRecord()
        {
            object target = (object)Server ?? Connection;
            var source = Server != null ? Server.AsSource() : ConversationLineHandler.SourceFor(Connection) ?? Connection.AsSource();
            var location = Server != null ? Server.LocalEndPoint.ToString() : Connection.RemoteEndPoint?.ToString();
            HandlerFailureReport.WriteUnseen(this, Server ?? Connection?.Server);
            var result = Wait(this, source, location, target, Match, Count, Timeout);
            foreach (var message in result.Matched) WriteObject(message);
            if (result.Matched.Count < Count)
            {
                WriteError(TcpErrors.From(TcpErrorKind.ReceiveTimeout, result.Describe(source.Name, Match, Count, Timeout), target));
            }
        }

        /// <summary>What one wait found: the matching messages, and every message it saw.</summary>
        internal sealed class WaitResult
        {
            public List<TcpMessage> Matched { get; } = new List<TcpMessage>();

            public List<TcpMessage> Seen { get; } = new List<TcpMessage>();

            public string Describe(string sourceName, string match, int count, TimeSpan timeout)
            {
                var text = $"Expected {count} message(s) like '{match}' from {sourceName} within {timeout.TotalSeconds:0.###} s, " +
                    $"but {Matched.Count} matched. ";
                if (Seen.Count == 0) return text + "Nothing was received.";
                const int Shown = 20;
                var lines = Seen.Take(Shown).Select(m => $"  [{m.ConnectionId}#{m.Sequence}] {Quote(m.Text)}");
                return text + $"Received {Seen.Count} message(s):{Environment.NewLine}" + string.Join(Environment.NewLine, lines) +
                    (Seen.Count > Shown ? $"{Environment.NewLine}  … and {Seen.Count - Shown} more" : string.Empty);
            }

            private static string Quote(string text)
            {
                if (text.Length > 120) text = text.Substring(0, 120) + "…";
                var escaped = new System.Text.StringBuilder();
                foreach (var c in text)
                {
                    if (c < ' ' || c == 0x7f) escaped.Append($"`u{{{(int)c:x}}}");
                    else escaped.Append(c);
                }

                return "'" + escaped + "'";
            }
        }

        /// <summary>The wait itself, shared with the Pester operator: errors and warnings of the source are written as they come.</summary>
        internal static WaitResult Wait(TcpCmdlet cmdlet, IMessageSource source, string location, object target, string match, int count, TimeSpan timeout)
        {
            var pattern = WildcardPattern.Get(match, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant);
            var result = new WaitResult();
            var passed = PassedOver.GetValue(target, _ => new List<TcpMessage>());
            lock (passed)
            {
                for (int i = 0; i < passed.Count && result.Matched.Count < count; i++)
                {
                    result.Seen.Add(passed[i]);
                    if (pattern.IsMatch(passed[i].Text))
                    {
                        result.Matched.Add(passed[i]);
                        passed.RemoveAt(i--);
                    }
                }
            }

            if (result.Matched.Count >= count) return result;
            using (var consumer = new MessageConsumer(source, location, target, null, timeout, null, false, cmdlet.Cancellation))
            {
                while (result.Matched.Count < count && MoveNext(cmdlet, consumer))
                {
                    switch (consumer.CurrentKind)
                    {
                        case ConsumedKind.Message:
                            var message = (TcpMessage)consumer.Current;
                            result.Seen.Add(message);
                            if (pattern.IsMatch(message.Text))
                            {
                                result.Matched.Add(message);
                            }
                            else
                            {
                                lock (passed) passed.Add(message);
                            }

                            break;
                        case ConsumedKind.Error: cmdlet.WriteError((ErrorRecord)consumer.Current); break;
                        case ConsumedKind.Warning: cmdlet.WriteWarning((string)consumer.Current); break;
                        default: cmdlet.WriteVerbose((string)consumer.Current); break;
                    }
                }
            }

            return result;
        }

        private static bool MoveNext(TcpCmdlet cmdlet, MessageConsumer consumer)
        {
            var next = consumer.MoveNextAsync();
            try
            {
                return next.IsCompletedSuccessfully ? next.Result : next.AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException) when (cmdlet.Cancellation.IsCancellationRequested)
            {
                throw new PipelineStoppedException();
            }
        }
    }
}

using System;
using System.Management.Automation;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Disconnect-TcpEndpoint: flushes what was sent and closes gracefully; past -Timeout (a
    /// send stuck on a peer that never reads) it resets the connection and says so.
    /// </summary>
    [Cmdlet(VerbsCommunications.Disconnect, "TcpEndpoint", SupportsShouldProcess = true, DefaultParameterSetName = ByObject, HelpUri = HelpLinks.Base + "Disconnect-TcpEndpoint.md")]
    [OutputType(typeof(TcpConnection))]
    public sealed class DisconnectTcpEndpointCommand : TcpCmdlet
    {
        internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);
        private static readonly TimeSpan AfterReset = TimeSpan.FromSeconds(2);

        private const string ByObject = "Connection";
        private const string ByName = "Name";
        private const string ById = "Id";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = ByObject)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection[] Connection { get; set; }

        /// <summary>Client connections by name (wildcards), as Get-TcpConnection -Name finds them.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ByName)]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public string[] Name { get; set; }

        /// <summary>Connections by id: client ones, or ones a server of this session accepted.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ById)]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public int[] Id { get; set; }

        /// <summary>Half-close: shut down sending only and keep receiving until the peer closes.</summary>
        [Parameter]
        public SwitchParameter SendOnly { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>Abort with a reset (RST) instead of closing gracefully; unsent data is discarded.</summary>
        [Parameter]
        public SwitchParameter Reset { get; set; }

        /// <summary>How long the graceful close may take before the connection is reset.</summary>
        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        protected override void ProcessRecord()
        {
            var connections = ParameterSetName == ById ? TcpRegistry.ConnectionsById(Id, WriteError)
                : ParameterSetName == ByName ? TcpRegistry.ConnectionsByName(Name, WriteError)
                : (System.Collections.Generic.IEnumerable<TcpConnection>)Connection;
            foreach (var connection in connections)
            {
                if (!ShouldProcess($"{connection.Name} (Id {connection.Id}) to {connection.RemoteEndPoint}", SendOnly ? "Shut down sending" : Reset ? "Reset" : "Disconnect"))
                {
                    continue;
                }

                // A conversation closing (or resetting) its own connection must not wait for itself.
                if (!SendOnly) ConversationLineHandler.NotifyClosing(connection);
                if (Reset)
                {
                    // Inside the connection's own handler the reset comes once its messages are queued.
                    if (HandlerInvoker.IsHandling(connection)) connection.RequestReset();
                    else connection.Reset();
                    if (connection.Server == null) TcpRegistry.Remove(connection);
                    WriteVerbose($"{connection.Name} reset after {connection.MessagesSent:N0} message(s) sent and {connection.MessagesReceived:N0} received.");
                    if (PassThru) WriteObject(connection);
                    continue;
                }

                if (SendOnly)
                {
                    // The peer sees end of stream; its answer still arrives in the queue, and the
                    // connection closes when the peer closes.
                    Wait(connection.HalfCloseAsync());
                    WriteVerbose($"{connection.Name}: sending shut down after {connection.MessagesSent:N0} line(s); still receiving.");
                    if (PassThru) WriteObject(connection);
                    continue;
                }

                // Sends are complete when Send-TcpLine returns: closing sends FIN after them, and
                // lines the peer sends back before it closes still reach the queue. A send stuck
                // on a peer that never reads holds the close up: past -Timeout, reset.
                if (HandlerInvoker.IsHandling(connection))
                {
                    // A Start-TcpServer handler closing its own connection: the core closes it
                    // (the same graceful close) once the handler returns, after its output.
                    connection.RequestClose(Timeout);
                    WriteVerbose($"{connection.Name} closes once this handler returns, after what it sent.");
                    if (PassThru) WriteObject(connection);
                    continue;
                }

                if (!Close(connection))
                {
                    WriteWarning($"{connection.Name} (Id {connection.Id}) to {connection.RemoteEndPoint} did not close gracefully within " +
                        $"{Timeout.TotalSeconds:0.###} s (a send was stuck, or the peer neither read nor closed), so it was reset: " +
                        "data the peer had not taken yet is lost.");
                }
                if (connection.Server == null)
                {
                    TcpRegistry.Remove(connection);
                }

                WriteVerbose($"{connection.Name} closed after {connection.MessagesSent:N0} line(s) sent and {connection.MessagesReceived:N0} received.");
                if (PassThru)
                {
                    WriteObject(connection);
                }
            }
        }

        /// <summary>
        /// Closes gracefully within -Timeout (the batch in hand answered, FIN, the peer's last
        /// lines queued, its FIN); false when the core had to reset the connection instead. The
        /// core returns within -Timeout plus a few milliseconds; the wait here is bounded too.
        /// </summary>
        private bool Close(TcpConnection connection)
        {
            var close = connection.CloseAsync(Timeout);
            if (WaitWithin(close, Timeout + AfterReset))
            {
                return Wait(close);
            }

            connection.Abort(reset: true);
            return false;
        }
    }
}

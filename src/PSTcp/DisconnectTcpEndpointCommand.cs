using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Disconnect-TcpEndpoint: flushes what was sent and closes gracefully.</summary>
    [Cmdlet(VerbsCommunications.Disconnect, "TcpEndpoint", SupportsShouldProcess = true)]
    [OutputType(typeof(TcpConnection))]
    public sealed class DisconnectTcpEndpointCommand : TcpCmdlet
    {
        private static readonly TimeSpan Linger = TimeSpan.FromSeconds(2);

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection[] Connection { get; set; }

        /// <summary>Half-close: shut down sending only and keep receiving until the peer closes.</summary>
        [Parameter]
        public SwitchParameter SendOnly { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord()
        {
            foreach (var connection in Connection)
            {
                if (!ShouldProcess($"{connection.Name} (Id {connection.Id}) to {connection.RemoteEndPoint}", SendOnly ? "Shut down sending" : "Disconnect"))
                {
                    continue;
                }

                if (SendOnly)
                {
                    // The peer sees end of stream; its answer still arrives in the queue, and the
                    // connection closes when the peer closes.
                    Wait(connection.HalfCloseAsync());
                    WriteVerbose($"{connection.Name}: sending shut down after {connection.MessagesSent} line(s); still receiving.");
                    if (PassThru) WriteObject(connection);
                    continue;
                }

                // Sends are complete when Send-TcpLine returns: closing sends FIN after them, and
                // lines the peer sends back before it closes still reach the queue.
                Wait(connection.CloseAsync(Linger));
                if (connection.Server == null)
                {
                    TcpRegistry.Remove(connection);
                }

                WriteVerbose($"{connection.Name} closed after {connection.MessagesSent} line(s) sent and {connection.MessagesReceived} received.");
                if (PassThru)
                {
                    WriteObject(connection);
                }
            }
        }
    }
}

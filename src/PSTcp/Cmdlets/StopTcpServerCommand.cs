using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Stop-TcpServer: stops accepting, finishes echoing what was read, closes the connections
    /// and completes the queue so consumers drain and end. Past -Timeout (connections stuck
    /// behind a peer that never reads or a full Wait-mode queue) it resets them and says so.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Stop, "TcpServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject, HelpUri = HelpLinks.Base + "Stop-TcpServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed class StopTcpServerCommand : TcpCmdlet
    {
        private const string ByObject = "Server";
        private const string ByName = "Name";
        private const string ById = "Id";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = ByObject)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public TcpServer[] Server { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ByName)]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public string[] Name { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public int[] Id { get; set; }

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>How long the connections may take to finish before they are reset.</summary>
        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = DisconnectTcpEndpointCommand.DefaultTimeout;

        private static readonly TimeSpan AfterReset = TimeSpan.FromSeconds(2);

        protected override void ProcessRecord()
        {
            foreach (var server in Resolve())
            {
                if (!ShouldProcess($"{server.Name} (Id {server.Id}) on {server.LocalEndPoint}", "Stop"))
                {
                    continue;
                }

                WriteVerbose($"Stopping {server.Name}: {server.ConnectionCount:N0} connection(s) open, {server.QueueLength:N0} message(s) queued.");
                int open = server.ConnectionCount;
                if (!Stop(server))
                {
                    WriteWarning($"{server.Name} (Id {server.Id}): its connections did not all finish within {Timeout.TotalSeconds:0.###} s " +
                        $"(of {open:N0} open, some had a peer that stopped reading, or a full Wait-mode queue), so those were reset: " +
                        "data their peers had not taken yet is lost.");
                }

                TcpRegistry.Remove(server);
                HandlerFailureReport.WriteSummary(this, server);
                WriteVerbose($"{server.Name} stopped; {server.LocalEndPoint} is free.");
                if (PassThru)
                {
                    WriteObject(server);
                }
            }
        }

        /// <summary>Stops within -Timeout; false when the core had to reset connections to do it.</summary>
        private bool Stop(TcpServer server)
        {
            var stop = server.StopAsync(Timeout);
            if (WaitWithin(stop, Timeout + AfterReset))
            {
                return Wait(stop);
            }

            foreach (var connection in server.Connections)
            {
                connection.Abort(reset: true);
            }

            return false;
        }

        private IEnumerable<TcpServer> Resolve()
        {
            switch (ParameterSetName)
            {
                case ById:
                    return TcpRegistry.ServersById(Id, WriteError);
                case ByName:
                    return TcpRegistry.ServersByName(Name, reportEmptyWildcards: true, WriteError);
                default:
                    return Server;
            }
        }
    }
}

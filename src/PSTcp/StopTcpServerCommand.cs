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
    [Cmdlet(VerbsLifecycle.Stop, "TcpServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
    [OutputType(typeof(TcpServer))]
    public sealed class StopTcpServerCommand : TcpCmdlet
    {
        private const string ByObject = "Server";
        private const string ByName = "Name";
        private const string ById = "Id";

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = ByObject)]
        [ServerTransformation]
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
                int reset = Stop(server);
                if (reset > 0)
                {
                    WriteWarning($"{server.Name} (Id {server.Id}): {reset:N0} connection(s) did not finish within {Timeout.TotalSeconds:0.###} s " +
                        "(a peer that stopped reading, or a full Wait-mode queue), so they were reset: data their peers had not taken yet is lost.");
                }

                TcpRegistry.Remove(server);
                WriteVerbose($"{server.Name} stopped; {server.LocalEndPoint} is free.");
                if (PassThru)
                {
                    WriteObject(server);
                }
            }
        }

        /// <summary>Stops within -Timeout; the number of connections it had to reset.</summary>
        private int Stop(TcpServer server)
        {
            Task stop = server.StopAsync();
            if (WaitWithin(stop, Timeout))
            {
                Wait(stop);
                return 0;
            }

            var stuck = server.Connections.Where(c => c.State != ConnectionState.Closed).ToList();
            foreach (var connection in stuck)
            {
                connection.Abort(reset: true);
            }

            if (WaitWithin(stop, AfterReset))
            {
                Wait(stop);
            }

            return Math.Max(stuck.Count, 1);
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

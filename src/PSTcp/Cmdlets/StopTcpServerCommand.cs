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
                if (HandlerInvoker.Current?.Server == server)
                {
                    // A handler stopping its own server: waiting would wait for itself (its
                    // connection closes only once it returns). The stop goes on without it; the
                    // handler's output is still sent before that connection's FIN.
                    _ = server.StopAsync(Timeout);
                    TcpRegistry.Remove(server);
                    WriteVerbose($"{server.Name} is stopping; this handler's connection closes once the handler returns.");
                    if (PassThru) WriteObject(server);
                    continue;
                }

                var connections = server.Connections;
                if (!Stop(server))
                {
                    int reset = connections.Count(c => c.WasReset);
                    WriteWarning($"{server.Name} (Id {server.Id}): {Describe(reset)} of {open:N0} connection(s) did not close gracefully within {Timeout.TotalSeconds:0.###} s " +
                        "(a peer that stopped reading or never closed, a busy handler, or a full Wait-mode queue), so they were reset: " +
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

        private static string Describe(int reset) => reset > 0 ? reset.ToString("N0") : "some";

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

using System.Collections.Generic;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Stop-TcpServer: stops accepting, finishes echoing what was read, closes the connections
    /// and completes the queue so consumers drain and end.
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

        protected override void ProcessRecord()
        {
            foreach (var server in Resolve())
            {
                if (!ShouldProcess($"{server.Name} (Id {server.Id}) on {server.LocalEndPoint}", "Stop"))
                {
                    continue;
                }

                WriteVerbose($"Stopping {server.Name}: {server.ConnectionCount} connection(s) open, {server.QueueLength} message(s) queued.");
                Wait(server.StopAsync());
                TcpRegistry.Remove(server);
                WriteVerbose($"{server.Name} stopped; {server.LocalEndPoint} is free.");
                if (PassThru)
                {
                    WriteObject(server);
                }
            }
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

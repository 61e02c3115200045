using System.Collections.Generic;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>The -Server/-Name/-Id selection Suspend-TcpServer and Resume-TcpServer share.</summary>
    public abstract class ServerSelectionCmdlet : TcpCmdlet
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

        protected IEnumerable<TcpServer> Resolve()
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

    /// <summary>
    /// Suspend-TcpServer: new connection attempts are refused (accepted and reset at once) or,
    /// with -Mode Timeout, left unanswered, while the listener keeps the port; open connections
    /// go on. State is Suspended until Resume-TcpServer.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Suspend, "TcpServer", SupportsShouldProcess = true, DefaultParameterSetName = "Server", HelpUri = HelpLinks.Base + "Suspend-TcpServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed class SuspendTcpServerCommand : ServerSelectionCmdlet
    {
        /// <summary>Refuse (reset each attempt) or Timeout (don't accept; once the backlog is full, connects time out).</summary>
        [Parameter]
        public SuspendMode Mode { get; set; } = SuspendMode.Refuse;

        protected override void ProcessRecord()
        {
            foreach (var server in Resolve())
            {
                if (!ShouldProcess($"{server.Name} (Id {server.Id}) on {server.LocalEndPoint}", "Suspend")) continue;
                if (!server.Suspend(Mode) && server.State != ServerState.Suspended)
                {
                    WriteError(TcpErrors.InvalidArgument($"{server.Name} (Id {server.Id}) is {server.State}: only a running server can be suspended.", server));
                    continue;
                }

                WriteVerbose($"{server.Name} keeps {server.LocalEndPoint} but takes no new connections ({server.SuspendMode}).");
                if (PassThru) WriteObject(server);
            }
        }
    }

    /// <summary>Resume-TcpServer: a suspended server takes connections again.</summary>
    [Cmdlet(VerbsLifecycle.Resume, "TcpServer", SupportsShouldProcess = true, DefaultParameterSetName = "Server", HelpUri = HelpLinks.Base + "Resume-TcpServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed class ResumeTcpServerCommand : ServerSelectionCmdlet
    {
        protected override void ProcessRecord()
        {
            foreach (var server in Resolve())
            {
                if (!ShouldProcess($"{server.Name} (Id {server.Id}) on {server.LocalEndPoint}", "Resume")) continue;
                if (!server.Resume() && server.State != ServerState.Running)
                {
                    WriteError(TcpErrors.InvalidArgument($"{server.Name} (Id {server.Id}) is {server.State}: only a suspended server can be resumed.", server));
                    continue;
                }

                WriteVerbose($"{server.Name} takes connections on {server.LocalEndPoint} again.");
                if (PassThru) WriteObject(server);
            }
        }
    }
}

using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Get-TcpServer: the servers of this process, by name (wildcards) or id.</summary>
    [Cmdlet(VerbsCommon.Get, "TcpServer", DefaultParameterSetName = ByName, HelpUri = HelpLinks.Base + "Get-TcpServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed class GetTcpServerCommand : TcpCmdlet
    {
        private const string ByName = "Name";
        private const string ById = "Id";

        [Parameter(Position = 0, ParameterSetName = ByName, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public string[] Name { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public int[] Id { get; set; }

        protected override void ProcessRecord()
        {
            var servers = ParameterSetName == ById ? TcpRegistry.ServersById(Id, WriteError)
                : Name == null ? TcpRegistry.Servers
                : TcpRegistry.ServersByName(Name, reportEmptyWildcards: false, WriteError);
            WriteObject(servers, enumerateCollection: true);
        }
    }
}

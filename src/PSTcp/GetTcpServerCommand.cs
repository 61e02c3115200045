using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Get-TcpServer: the servers of this process, by name (wildcards) or id.</summary>
    [Cmdlet(VerbsCommon.Get, "TcpServer", DefaultParameterSetName = ByName)]
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
            if (ParameterSetName == ById)
            {
                foreach (var id in Id)
                {
                    var server = TcpRegistry.FindServer(id);
                    if (server == null)
                    {
                        WriteError(TcpErrors.From(TcpErrorKind.ServerNotFound, $"No server has Id {id}.", id));
                    }
                    else
                    {
                        WriteObject(server);
                    }
                }

                return;
            }

            if (Name == null)
            {
                WriteObject(TcpRegistry.Servers, enumerateCollection: true);
                return;
            }

            foreach (var name in Name)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = TcpRegistry.Servers.Where(s => pattern.IsMatch(s.Name)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    WriteError(TcpErrors.From(TcpErrorKind.ServerNotFound, $"No server is named '{name}'.", name));
                }

                WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}

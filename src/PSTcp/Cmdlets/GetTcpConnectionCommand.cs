using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Get-TcpConnection: client connections, or the connections a server accepted.</summary>
    [Cmdlet(VerbsCommon.Get, "TcpConnection", DefaultParameterSetName = ByName, HelpUri = HelpLinks.Base + "Get-TcpConnection.md")]
    [OutputType(typeof(TcpConnection))]
    public sealed class GetTcpConnectionCommand : TcpCmdlet
    {
        private const string ByName = "Name";
        private const string ById = "Id";

        [Parameter(Position = 0, Mandatory = true, ParameterSetName = ById)]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public int[] Id { get; set; }

        [Parameter(ParameterSetName = ByName)]
        [SupportsWildcards]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public string[] Name { get; set; }

        /// <summary>List this server's accepted connections instead of client connections.</summary>
        [Parameter(ValueFromPipeline = true)]
        [ServerTransformation]
        [ArgumentCompleter(typeof(ServerCompleter))]
        public TcpServer Server { get; set; }

        protected override void ProcessRecord()
        {
            IEnumerable<TcpConnection> all = Server != null ? Server.Connections : TcpRegistry.Clients;
            if (ParameterSetName == ById)
            {
                foreach (var id in Id)
                {
                    var connection = Server != null ? all.FirstOrDefault(c => c.Id == id) : TcpRegistry.FindConnection(id);
                    if (connection == null)
                        WriteError(TcpErrors.From(TcpErrorKind.ConnectionNotFound, $"No connection has Id {id}.", id));
                    else
                        WriteObject(connection);
                }

                return;
            }

            if (Name == null)
            {
                WriteObject(all, enumerateCollection: true);
                return;
            }

            foreach (var name in Name)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = all.Where(c => pattern.IsMatch(c.Name)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    WriteError(TcpErrors.From(TcpErrorKind.ConnectionNotFound, $"No connection is named '{name}'.", name));
                }

                WriteObject(matches, enumerateCollection: true);
            }
        }
    }
}

using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Remove-Module PSTcp stops every server, connection and consumer job.</summary>
    public sealed class ModuleLifetime : IModuleAssemblyCleanup
    {
        public void OnRemove(PSModuleInfo psModuleInfo) => TcpRegistry.Shutdown();
    }
}

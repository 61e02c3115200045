using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Start-TcpEchoServer: listens and echoes every line back, queuing it for consumers.</summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpEchoServer")]
    [OutputType(typeof(TcpServer))]
    public sealed class StartTcpEchoServerCommand : ServerCommandBase
    {
        protected override void EndProcessing() => WriteObject(StartServer(EchoLineHandler.Instance));
    }
}

using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Start-TcpEchoServer: listens and echoes every line back, queuing it for consumers.</summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpEchoServer", SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Start-TcpEchoServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed class StartTcpEchoServerCommand : ServerCommandBase
    {
        /// <summary>Sent to each accepted connection, framed, before anything is echoed.</summary>
        [Parameter]
        [ValidateNotNull]
        public object[] Greeting { get; set; }

        protected override void EndProcessing()
        {
            if (!ShouldStart()) return;
            LineHandler handler = EchoLineHandler.Instance;
            if (Greeting != null && Greeting.Length > 0)
            {
                handler = new GreetingLineHandler(handler, Greeting, new byte[] { (byte)'\n' });
            }

            WriteObject(StartServer(handler));
        }
    }
}

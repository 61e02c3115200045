using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer: a server with a per-line scriptblock handler whose output lines go back
    /// to the client, or (-Broadcast) a hub relaying each line to every other client. Same
    /// limits, queue and consumer jobs as Start-TcpEchoServer.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpServer", DefaultParameterSetName = WithScriptBlock)]
    [OutputType(typeof(TcpServer))]
    public sealed class StartTcpServerCommand : ServerCommandBase
    {
        private const string WithScriptBlock = "ScriptBlock";
        private const string AsBroadcast = "Broadcast";

        /// <summary>Runs per line with the TcpMessage as its first argument; its output lines are sent back.</summary>
        [Parameter(Mandatory = true, ParameterSetName = WithScriptBlock)]
        [ValidateNotNull]
        public ScriptBlock ScriptBlock { get; set; }

        /// <summary>Most handlers running at once (runspaces in the pool).</summary>
        [Parameter(ParameterSetName = WithScriptBlock)]
        [ValidateRange(1, 1024)]
        public int ThrottleLimit { get; set; } = Environment.ProcessorCount;

        /// <summary>Relay each line to every other connected client.</summary>
        [Parameter(Mandatory = true, ParameterSetName = AsBroadcast)]
        public SwitchParameter Broadcast { get; set; }

        /// <summary>How far, in bytes, a broadcast receiver may fall behind before it is disconnected.</summary>
        [Parameter(ParameterSetName = AsBroadcast)]
        [ValidateRange(1024, int.MaxValue)]
        public int MaxSendQueueBytes { get; set; } = BroadcastLineHandler.DefaultMaxQueuedBytes;

        protected override void EndProcessing()
        {
            LineHandler handler;
            if (ParameterSetName == AsBroadcast)
            {
                handler = new BroadcastLineHandler(MaxSendQueueBytes);
            }
            else
            {
                var modulePath = MyInvocation.MyCommand.Module?.Path;
                handler = new ScriptBlockLineHandler(ScriptBlock, ThrottleLimit, modulePath, Encoding);
            }

            try
            {
                WriteObject(StartServer(handler));
            }
            catch
            {
                (handler as IDisposable)?.Dispose();
                throw;
            }
        }
    }
}

using System.IO;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Register-TcpShouldOperator: adds Should -HaveReceivedTcpMessage to Pester 5 (done on import
    /// when Pester is already loaded; call this when Pester was loaded after PSTcp).
    /// </summary>
    [Cmdlet(VerbsLifecycle.Register, "TcpShouldOperator", HelpUri = HelpLinks.Base + "Register-TcpShouldOperator.md")]
    [OutputType(typeof(string))]
    public sealed class RegisterTcpShouldOperatorCommand : PSCmdlet
    {
        internal const string ScriptName = "PSTcp.Pester.ps1";

        /// <summary>Writes the name of the operator registered.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void EndProcessing()
        {
            if (InvokeCommand.GetCommand("Add-ShouldOperator", CommandTypes.Function | CommandTypes.Cmdlet) == null)
            {
                ThrowTerminatingError(new ErrorRecord(
                    new System.InvalidOperationException("Pester 5 is not loaded (no Add-ShouldOperator): Import-Module Pester first."),
                    "PesterNotLoaded", ErrorCategory.ObjectNotFound, null));
            }

            var path = Path.Combine(Path.GetDirectoryName(typeof(RegisterTcpShouldOperatorCommand).Assembly.Location), ScriptName);
            InvokeCommand.InvokeScript(SessionState, ScriptBlock.Create(File.ReadAllText(path)));
            WriteVerbose("Should -HaveReceivedTcpMessage is registered.");
            if (PassThru) WriteObject("HaveReceivedTcpMessage");
        }
    }
}

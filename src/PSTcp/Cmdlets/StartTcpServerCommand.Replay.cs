using System;
using System.IO;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer -ReplayPath (SPEC "Test doubles", Recording): answers from a recording made
    /// by Start-TcpRelay -RecordPath, without any target.
    /// </summary>
    public sealed partial class StartTcpServerCommand
    {
        private const string WithReplay = "Replay";

        /// <summary>A recording made by Start-TcpRelay -RecordPath: each connection is answered from it.</summary>
        [Parameter(Mandatory = true, ParameterSetName = WithReplay)]
        [ValidateNotNullOrEmpty]
        public string ReplayPath { get; set; }

        /// <summary>Answer at the recorded pace (the target's delays), not at once.</summary>
        [Parameter(ParameterSetName = WithReplay)]
        public SwitchParameter ReplayTiming { get; set; }

        private LineHandler CreateReplay()
        {
            var path = ResolveRecordingPath(this, ReplayPath);
            try
            {
                if (!File.Exists(path))
                {
                    throw new TcpException(TcpErrorKind.RecordingInvalid, $"The recording {path} does not exist.");
                }

                var recording = TcpRecording.Load(path);
                WriteVerbose($"Replaying {recording.Connections.Count} recorded connection(s) from {path}" + (ReplayTiming ? " at the recorded pace." : "."));
                // A miss is shown at the next receive on the server, and summed up at stop, as handler failures are.
                return new ReplayHandler(recording, path, ReplayTiming) { ReportMiss = HandlerFailures.Record };
            }
            catch (TcpException e)
            {
                ThrowTcpError(e, ReplayPath);
                return null;
            }
        }

        /// <summary>A recording's file-system path from a PowerShell one; NotAFileSystemPath for another provider's.</summary>
        internal static string ResolveRecordingPath(PSCmdlet cmdlet, string path)
        {
            var resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out var provider, out _);
            if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
            {
                cmdlet.ThrowTerminatingError(TcpErrors.Record(new ArgumentException($"'{path}' is not a file system path: a recording is a file."),
                    TcpErrors.NotAFileSystemPath, ErrorCategory.InvalidArgument, path));
            }

            return resolved;
        }
    }
}

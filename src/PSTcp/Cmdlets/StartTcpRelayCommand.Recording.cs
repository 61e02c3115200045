using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpRelay's record and replay parameters (SPEC "Test doubles", Recording): kept in
    /// this file so the relay's other parameters merge without conflicts.
    /// </summary>
    public sealed partial class StartTcpRelayCommand
    {
        /// <summary>The recording file (JSON): written with what the target answers, or read to answer without it, by -RecordMode.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string RecordPath { get; set; }

        /// <summary>Once (default): record when the file does not exist, else replay it; All: record every connection; None: only replay; NewEpisodes: replay what the file has, record and append the rest.</summary>
        [Parameter]
        public RecordMode RecordMode { get; set; } = RecordMode.Once;

        /// <summary>The -RecordPath recorder for the relay's handler; null without -RecordPath.</summary>
        private RelayRecorder CreateRecorder()
        {
            if (RecordPath == null)
            {
                if (MyInvocation.BoundParameters.ContainsKey(nameof(RecordMode)))
                {
                    ThrowTerminatingError(TcpErrors.InvalidArgument("-RecordMode needs -RecordPath, the recording file.", RecordMode));
                }

                return null;
            }

            var path = StartTcpServerCommand.ResolveRecordingPath(this, RecordPath);
            try
            {
                var recorder = new RelayRecorder(path, RecordMode, TargetText) { ReportMiss = HandlerFailures.Record };
                WriteVerbose(recorder.Replays
                    ? $"Replaying {path}" + (recorder.Records ? "; connections it does not have go to the target and are appended." : " without contacting the target.")
                    : $"Recording every connection to {path}.");
                return recorder;
            }
            catch (TcpException e)
            {
                ThrowTcpError(e, RecordPath);
                return null;
            }
        }
    }
}

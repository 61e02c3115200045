using System;
using System.Collections.Generic;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// New-TcpReply: a reply action for fakes (a -Reply value, -DefaultReply, -Greeting or handler
    /// output): messages sent after a delay that holds no handler worker, then a graceful close or
    /// a reset; or no reply at all.
    /// </summary>
    [Cmdlet(VerbsCommon.New, "TcpReply", HelpUri = HelpLinks.Base + "New-TcpReply.md")]
    [OutputType(typeof(TcpReply))]
    public sealed class NewTcpReplyCommand : PSCmdlet
    {
        /// <summary>The messages to send: strings or byte arrays, each one message.</summary>
        [Parameter(Position = 0)]
        [AllowEmptyCollection]
        public object[] Message { get; set; }

        /// <summary>How long to wait before sending.</summary>
        [Parameter]
        [TimeSpanTransformation(AllowZero = true)]
        public TimeSpan Delay { get; set; } = TimeSpan.Zero;

        /// <summary>Close the connection gracefully after the messages.</summary>
        [Parameter]
        public SwitchParameter Close { get; set; }

        /// <summary>Reset the connection (RST) after the messages.</summary>
        [Parameter]
        public SwitchParameter Reset { get; set; }

        /// <summary>Send nothing.</summary>
        [Parameter]
        public SwitchParameter NoReply { get; set; }

        /// <summary>Send the messages without the connection's framing.</summary>
        [Parameter]
        public SwitchParameter Raw { get; set; }

        protected override void EndProcessing()
        {
            if (Close && Reset)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument("Use -Close or -Reset, not both.", this));
            }

            if (NoReply && Message != null && Message.Length > 0)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument("-NoReply sends nothing: give no -Message with it.", Message));
            }

            // A [byte[]] bound to -Message arrives as its bytes: consecutive bytes are one message.
            var messages = new List<object>();
            List<byte> bytes = null;
            foreach (var item in Message ?? Array.Empty<object>())
            {
                var one = item is PSObject pso ? pso.BaseObject : item;
                if (one is byte b)
                {
                    (bytes ?? (bytes = new List<byte>())).Add(b);
                    continue;
                }

                if (bytes != null)
                {
                    messages.Add(bytes.ToArray());
                    bytes = null;
                }

                if (one == null) continue;
                if (one is byte[] || one is string)
                {
                    messages.Add(one);
                }
                else
                {
                    messages.Add(LanguagePrimitives.ConvertTo<string>(one));
                }
            }

            if (bytes != null) messages.Add(bytes.ToArray());
            WriteObject(new TcpReply(messages.ToArray(), Delay, Close, Reset, NoReply, Raw));
        }
    }
}

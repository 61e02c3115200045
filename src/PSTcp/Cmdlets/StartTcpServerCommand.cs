using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer: a server whose scriptblock handler (-ScriptBlock) or table of answers
    /// (-Reply) answers each message, framed, or (-Broadcast) a hub relaying each line to every
    /// other client. Same limits, queue and consumer jobs as Start-TcpEchoServer.
    /// </summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpServer", DefaultParameterSetName = WithScriptBlock, SupportsShouldProcess = true, HelpUri = HelpLinks.Base + "Start-TcpServer.md")]
    [OutputType(typeof(TcpServer))]
    public sealed partial class StartTcpServerCommand : ServerCommandBase
    {
        private const string WithScriptBlock = "ScriptBlock";
        private const string WithReply = "Reply";
        private const string AsBroadcast = "Broadcast";

        /// <summary>Runs per message with the TcpMessage and the TcpConnection as its first arguments; its output is sent back.</summary>
        [Parameter(Mandatory = true, Position = 1, ParameterSetName = WithScriptBlock)]
        [ValidateNotNull]
        public ScriptBlock ScriptBlock { get; set; }

        /// <summary>Wildcard pattern → answer (a string, strings, or a scriptblock called as -ScriptBlock is); first match wins.</summary>
        [Parameter(Mandatory = true, ParameterSetName = WithReply)]
        [ValidateNotNull]
        public IDictionary Reply { get; set; }

        /// <summary>The answer to a message no -Reply key matches; none by default.</summary>
        [Parameter(ParameterSetName = WithReply)]
        public object DefaultReply { get; set; }

        /// <summary>Values passed to the handler after the message and the connection.</summary>
        [Parameter(ParameterSetName = WithScriptBlock)]
        [Parameter(ParameterSetName = WithReply)]
        [Parameter(ParameterSetName = WithConversation)]
        [Alias("Args")]
        public object[] ArgumentList { get; set; }

        /// <summary>What ends each line the handler sends (Line framing).</summary>
        [Parameter(ParameterSetName = WithScriptBlock)]
        [Parameter(ParameterSetName = WithReply)]
        [Parameter(ParameterSetName = WithConversation)]
        [ValidateNotNullOrEmpty]
        [ArgumentCompleter(typeof(NewLineCompleter))]
        public string NewLine { get; set; } = "\n";

        /// <summary>Most handlers running at once (long-lived runspaces, started as needed).</summary>
        [Parameter(ParameterSetName = WithScriptBlock)]
        [Parameter(ParameterSetName = WithReply)]
        [Parameter(ParameterSetName = WithConversation)]
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
            // Before any handler runspace exists: -WhatIf binds and starts nothing.
            if (!ShouldStart()) return;
            LineHandler handler = ParameterSetName == AsBroadcast
                ? new BroadcastLineHandler(MaxSendQueueBytes)
                : ParameterSetName == WithConversation ? CreateConversation()
                : ParameterSetName == WithReplay ? CreateReplay() // -ReplayPath (StartTcpServerCommand.Replay.cs)
                : CreateHandler();
            handler = WithGreeting(handler);
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

        private LineHandler CreateHandler()
        {
            var scripts = new HandlerScripts(SessionState);
            var newLine = Encoding.GetBytes(NewLine);
            try
            {
                if (ParameterSetName == WithScriptBlock)
                {
                    WarnAboutUsing(ScriptBlock);
                    scripts.Add(ScriptBlock);
                    return new ScriptBlockLineHandler(StartWorkers(scripts), newLine);
                }

                WarnAboutReply();
                var rules = new List<ReplyRule>();
                foreach (DictionaryEntry entry in Reply)
                {
                    var key = entry.Key?.ToString();
                    if (string.IsNullOrEmpty(key))
                    {
                        throw new ArgumentException("A -Reply key is empty: keys are wildcard patterns matched against each message's Text.", nameof(Reply));
                    }

                    rules.Add(new ReplyRule(key, ToAction(entry.Value, scripts, $"-Reply '{key}'")));
                }

                var defaultAction = MyInvocation.BoundParameters.ContainsKey(nameof(DefaultReply))
                    ? ToAction(DefaultReply, scripts, "-DefaultReply")
                    : null;
                // Only strings: answered on the connection's own loop, no runspace at all.
                var workers = scripts.Texts.Count > 0 ? StartWorkers(scripts) : null;
                return new ReplyLineHandler(rules, defaultAction, workers, newLine);
            }
            catch (ArgumentException e)
            {
                ThrowTcpError(e, e.ParamName);
                return null;
            }
        }

        private HandlerWorkers StartWorkers(HandlerScripts scripts)
        {
            var modulePath = MyInvocation.MyCommand.Module?.Path;
            return new HandlerWorkers(scripts.Texts, ArgumentList, scripts.Variables, ThrottleLimit, modulePath, scripts.Origins);
        }

        /// <summary>A -Reply value: a string, strings, a scriptblock, or $null (answer nothing).</summary>
        private static HandlerAction ToAction(object value, HandlerScripts scripts, string what)
        {
            value = value is PSObject pso ? pso.BaseObject : value;
            var replies = AsReplies(value);
            if (replies != null) return HandlerAction.Sequence(replies);
            switch (value)
            {
                case null:
                    return HandlerAction.Nothing;
                case ScriptBlock script:
                    return HandlerAction.Call(scripts.Add(script));
                case string text:
                    return HandlerAction.Reply(new[] { text });
                case IEnumerable many:
                    var lines = new List<string>();
                    foreach (var item in many)
                    {
                        var one = item is PSObject p ? p.BaseObject : item;
                        if (one is ScriptBlock)
                        {
                            throw new ArgumentException($"{what}: a list of answers can hold strings only; use one scriptblock that outputs several lines.", what);
                        }

                        if (one != null) lines.Add(LanguagePrimitives.ConvertTo<string>(one));
                    }

                    return HandlerAction.Reply(lines.ToArray());
                default:
                    return HandlerAction.Reply(new[] { LanguagePrimitives.ConvertTo<string>(value) });
            }
        }
    }
}

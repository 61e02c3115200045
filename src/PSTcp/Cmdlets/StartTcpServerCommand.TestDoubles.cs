using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer's test-double parameters (SPEC "Test doubles"): -Conversation, -Greeting,
    /// New-TcpReply values in -Reply, and the start-time warnings about likely mistakes. Kept in
    /// this file so the other parameter sets (-ReplayPath …) merge without conflicts.
    /// </summary>
    public sealed partial class StartTcpServerCommand
    {
        private const string WithConversation = "Conversation";
        private const int DefaultConversationLimit = 100;

        /// <summary>Runs once per accepted connection, in its own runspace, with the TcpConnection as its first argument.</summary>
        [Parameter(Mandatory = true, ParameterSetName = WithConversation)]
        [ValidateNotNull]
        public ScriptBlock Conversation { get; set; }

        /// <summary>Sent to each accepted connection, framed like replies, before anything else.</summary>
        [Parameter]
        [ValidateNotNull]
        public object[] Greeting { get; set; }

        private LineHandler CreateConversation()
        {
            var scripts = new HandlerScripts(SessionState);
            try
            {
                WarnAboutUsing(Conversation);
                scripts.Add(Conversation);
            }
            catch (ArgumentException e)
            {
                ThrowTcpError(e, e.ParamName);
            }

            var limit = MyInvocation.BoundParameters.ContainsKey(nameof(ThrottleLimit)) ? ThrottleLimit : DefaultConversationLimit;
            var modulePath = MyInvocation.MyCommand.Module?.Path;
            try
            {
                return new ConversationLineHandler(scripts.Texts[0], scripts.Origins[0], ArgumentList, scripts.Variables, limit,
                    modulePath, Encoding.GetBytes(NewLine), QueueCapacity);
            }
            catch (Exception e) when (!(e is PipelineStoppedException))
            {
                ThrowTerminatingError(TcpErrors.Record(e, nameof(TcpErrorKind.HandlerFailed), ErrorCategory.OpenError, Conversation));
                return null;
            }
        }

        /// <summary>-Greeting around whatever handler the server has.</summary>
        private LineHandler WithGreeting(LineHandler handler)
        {
            if (Greeting == null || Greeting.Length == 0) return handler;
            return new GreetingLineHandler(handler ?? EchoLineHandler.Instance, Greeting, Encoding.GetBytes(NewLine));
        }

        /// <summary>A -Reply value that is a New-TcpReply, or an array of them (answered in turn); else null.</summary>
        private static TcpReply[] AsReplies(object value)
        {
            if (value is TcpReply one) return new[] { one };
            if (!(value is IEnumerable many) || value is string) return null;
            var replies = new List<TcpReply>();
            foreach (var item in many)
            {
                var reply = (item is PSObject p ? p.BaseObject : item) as TcpReply;
                if (reply == null) return null;
                replies.Add(reply);
            }

            return replies.Count > 0 ? replies.ToArray() : null;
        }

        /// <summary>Warns about caller variables the scriptblock reads without $using: (they are empty in the handler's runspace).</summary>
        private void WarnAboutUsing(ScriptBlock scriptBlock)
        {
            foreach (var name in HandlerChecks.MissingUsing(scriptBlock, SessionState))
            {
                WriteWarning($"The handler reads ${name}, which is set in this session but not in the handler's own runspace, where it is empty. " +
                    $"Write $using:{name} to capture its value when the server starts, or pass it with -ArgumentList.");
            }
        }

        private void WarnAboutReply()
        {
            foreach (var (first, second) in HandlerChecks.OverlappingKeys(Reply))
            {
                WriteWarning($"-Reply keys '{first}' and '{second}' can match the same message, and a hashtable keeps no order, so which answers is left to chance. " +
                    "Use [ordered]@{ ... } with the more specific key first.");
            }

            foreach (DictionaryEntry entry in Reply)
            {
                if ((entry.Value is PSObject p ? p.BaseObject : entry.Value) is ScriptBlock script) WarnAboutUsing(script);
            }
        }
    }
}

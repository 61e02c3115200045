using System;
using System.Buffers;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>One -Reply entry: a wildcard pattern on the message's Text and what to answer.</summary>
    internal sealed class ReplyRule
    {
        public ReplyRule(string pattern, HandlerAction action)
        {
            Pattern = pattern;
            // Case-insensitive like PowerShell's -like.
            Wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant);
            Action = action;
        }

        public string Pattern { get; }

        public WildcardPattern Wildcard { get; }

        public HandlerAction Action { get; }
    }

    /// <summary>
    /// Start-TcpServer -Reply: a declarative fake service. Each message's Text is matched
    /// against the keys in order, first match wins; fixed answers are written right here, on the
    /// connection's own loop, so a -Reply of strings needs no runspace at all. A batch with a
    /// message that a scriptblock answers goes to the handler workers whole, to keep the order.
    /// </summary>
    internal sealed class ReplyLineHandler : ScriptBlockLineHandler
    {
        private readonly ReplyRule[] _rules;
        private readonly HandlerAction _default;

        public ReplyLineHandler(IReadOnlyList<ReplyRule> rules, HandlerAction defaultAction, HandlerWorkers workers, byte[] newLine)
            : base(workers, newLine)
        {
            _rules = new ReplyRule[rules.Count];
            for (int i = 0; i < _rules.Length; i++) _rules[i] = rules[i];
            _default = defaultAction ?? HandlerAction.Nothing;
        }

        public HandlerAction Match(string text)
        {
            foreach (var rule in _rules)
            {
                if (rule.Wildcard.IsMatch(text)) return rule.Action;
            }

            return _default;
        }

        public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
        {
            var actions = new HandlerAction[messages.Count];
            bool anyScript = false;
            for (int i = 0; i < actions.Length; i++)
            {
                var action = Match(messages[i].Text);
                actions[i] = action;
                anyScript |= action.IsScript;
            }

            return anyScript
                ? RunOnWorkersAsync(connection, messages, actions, null, cancellationToken)
                : ReplyAsync(connection, actions, cancellationToken);
        }

        private async ValueTask ReplyAsync(TcpConnection connection, HandlerAction[] actions, CancellationToken cancellationToken)
        {
            var output = new HandlerOutput(connection, NewLine);
            try
            {
                foreach (var action in actions)
                {
                    if (output.Ended) break;
                    if (action.Replies != null)
                    {
                        try
                        {
                            output.AddReply(action.NextReply(connection));
                        }
                        catch (ArgumentException e)
                        {
                            connection.Server?.RecordError(new TcpException(TcpErrorKind.HandlerFailed,
                                $"A reply can't be sent on connection {connection.Id}: {e.Message}", e), connection);
                        }

                        continue;
                    }

                    foreach (var line in action.Lines)
                    {
                        try
                        {
                            output.WriteText(line);
                        }
                        catch (ArgumentException e)
                        {
                            // FixedLength framing and a reply of another length: that reply only.
                            connection.Server?.RecordError(new TcpException(TcpErrorKind.HandlerFailed,
                                $"The reply '{line}' can't be sent on connection {connection.Id}: {e.Message}", e), connection);
                        }
                    }
                }

                await SendAsync(connection, output, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                output.Dispose();
            }
        }
    }
}

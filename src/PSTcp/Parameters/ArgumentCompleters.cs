using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace PSTcp.Commands
{
    /// <summary>Tab completion for server names and ids.</summary>
    public sealed class ServerCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            bool byId = parameterName.Equals("Id", StringComparison.OrdinalIgnoreCase);
            return Completions.Of(TcpRegistry.Servers, s => byId ? s.Id.ToString() : s.Name, s => s.ToString(), wordToComplete);
        }
    }

    /// <summary>Tab completion for connection names and ids (client connections and accepted ones).</summary>
    public sealed class ConnectionCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            bool byId = parameterName.Equals("Id", StringComparison.OrdinalIgnoreCase);
            var connections = byId
                ? TcpRegistry.Clients.Concat(TcpRegistry.Servers.SelectMany(s => s.Connections))
                : TcpRegistry.Clients;
            return Completions.Of(connections, c => byId ? c.Id.ToString() : c.Name, c => c.ToString(), wordToComplete);
        }
    }

    /// <summary>Tab completion for -Encoding.</summary>
    public sealed class EncodingCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters) =>
            Completions.Of(EncodingTransformationAttribute.Names, n => n, n => n, wordToComplete);
    }

    internal static class Completions
    {
        public static IEnumerable<CompletionResult> Of<T>(IEnumerable<T> items, Func<T, string> text, Func<T, string> tip, string word)
        {
            var pattern = WildcardPattern.Get((word ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            foreach (var item in items)
            {
                var value = text(item);
                if (pattern.IsMatch(value))
                {
                    var quoted = value.IndexOfAny(new[] { ' ', '\'', '$', '`', ';', '(', ')' }) >= 0 ? "'" + value.Replace("'", "''") + "'" : value;
                    yield return new CompletionResult(quoted, value, CompletionResultType.ParameterValue, tip(item));
                }
            }
        }
    }
}

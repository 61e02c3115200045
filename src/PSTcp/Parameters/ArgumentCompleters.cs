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

    /// <summary>
    /// Tab completion for -Address and -LocalAddress: this machine's own addresses, loopback
    /// first, then the wildcards (all IPv4, all IPv6 and IPv4 where dual stack), then the
    /// addresses of the network interfaces that are up.
    /// </summary>
    public sealed class AddressCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters) =>
            Completions.Of(Addresses(), a => a.Key, a => a.Value, wordToComplete);

        internal static List<KeyValuePair<string, string>> Addresses()
        {
            var list = new List<KeyValuePair<string, string>>
            {
                new KeyValuePair<string, string>("127.0.0.1", "IPv4 loopback: this machine only (the default)"),
                new KeyValuePair<string, string>("::1", "IPv6 loopback: this machine only"),
                new KeyValuePair<string, string>("0.0.0.0", "every IPv4 address of this machine"),
                new KeyValuePair<string, string>("::", "every IPv6 address, and IPv4 too where the system allows (dual stack)"),
            };
            try
            {
                foreach (var nic in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces())
                {
                    if (nic.OperationalStatus != System.Net.NetworkInformation.OperationalStatus.Up &&
                        nic.OperationalStatus != System.Net.NetworkInformation.OperationalStatus.Unknown) continue;
                    foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                    {
                        var text = unicast.Address.ToString();
                        if (list.Any(a => a.Key == text)) continue;
                        list.Add(new KeyValuePair<string, string>(text, $"{nic.Name} ({nic.NetworkInterfaceType})"));
                    }
                }
            }
            catch (System.Net.NetworkInformation.NetworkInformationException)
            {
                // No interface list on this system: the loopback and wildcard addresses remain.
            }

            return list;
        }
    }

    /// <summary>Tab completion for -NewLine: the usual terminators, as PowerShell strings.</summary>
    public sealed class NewLineCompleter : IArgumentCompleter
    {
        private static readonly KeyValuePair<string, string>[] s_choices =
        {
            new KeyValuePair<string, string>("\"`n\"", "LF: Unix, and most line protocols"),
            new KeyValuePair<string, string>("\"`r`n\"", "CRLF: HTTP, SMTP, Redis, Windows"),
            new KeyValuePair<string, string>("\"`r\"", "CR alone"),
            new KeyValuePair<string, string>("\"`0\"", "NUL: NUL-terminated messages"),
        };

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            // Inside a double-quoted string PowerShell hands over its value ("`r" is a CR):
            // a choice matches what was typed either way.
            var word = (wordToComplete ?? string.Empty).Trim('\'', '"');
            foreach (var choice in s_choices)
            {
                var literal = choice.Key.Trim('"');
                var value = literal.Replace("`n", "\n").Replace("`r", "\r").Replace("`0", "\0");
                if (literal.StartsWith(word, StringComparison.Ordinal) || value.StartsWith(word, StringComparison.Ordinal))
                {
                    yield return new CompletionResult(choice.Key, choice.Key, CompletionResultType.ParameterValue, choice.Value);
                }
            }
        }
    }

    /// <summary>Tab completion for -PrefixSize: the length prefix sizes LengthPrefix framing takes.</summary>
    public sealed class PrefixSizeCompleter : IArgumentCompleter
    {
        private static readonly KeyValuePair<string, string>[] s_choices =
        {
            new KeyValuePair<string, string>("1", "1 byte: up to 255"),
            new KeyValuePair<string, string>("2", "2 bytes: up to 65,535"),
            new KeyValuePair<string, string>("3", "3 bytes: up to 16 MiB"),
            new KeyValuePair<string, string>("4", "4 bytes (the default)"),
            new KeyValuePair<string, string>("8", "8 bytes"),
        };

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters) =>
            Completions.Of(s_choices, c => c.Key, c => c.Value, wordToComplete);
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

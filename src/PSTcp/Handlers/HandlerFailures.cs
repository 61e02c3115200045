using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Runtime.CompilerServices;
using System.Threading;

namespace PSTcp.Commands
{
    /// <summary>Where a handler's text came from (its file and first line), to point a failure at the test's own line.</summary>
    internal sealed class HandlerOrigin
    {
        public static readonly HandlerOrigin Unknown = new HandlerOrigin(null, 1);

        public HandlerOrigin(string file, int firstLine)
        {
            File = file;
            FirstLine = firstLine;
        }

        public string File { get; }

        public int FirstLine { get; }

        public static HandlerOrigin Of(ScriptBlock scriptBlock) =>
            new HandlerOrigin(scriptBlock.File ?? scriptBlock.Ast.Extent.File, scriptBlock.Ast.Extent.StartLineNumber);

        /// <summary>" at file:line: code" for an error of the handler's text (whose line 1 is <see cref="FirstLine"/>), or ".".</summary>
        public string Where(ErrorRecord record)
        {
            var info = record?.InvocationInfo;
            if (info == null || info.ScriptLineNumber <= 0) return ".";
            int line = FirstLine + info.ScriptLineNumber - 1;
            var code = info.Line?.Trim();
            var place = File != null ? $"{File}:{line}" : $"line {line}";
            return $" at {place}" + (string.IsNullOrEmpty(code) ? "." : $": {code}");
        }
    }

    /// <summary>
    /// Handler and conversation failures, kept per server until a test looks: the next
    /// Receive-TcpMessage (or Wait-TcpMessage) on that server writes those no consumer saw yet,
    /// and Stop-TcpServer sums them up.
    /// </summary>
    internal static class HandlerFailures
    {
        private const int MaxKept = 100;
        private static readonly ConditionalWeakTable<TcpServer, Store> Stores = new ConditionalWeakTable<TcpServer, Store>();

        private sealed class Store
        {
            public readonly ConcurrentQueue<TcpException> Unseen = new ConcurrentQueue<TcpException>();
            public long Total;
            public TcpException Last;
        }

        /// <summary>Counts the failure on the connection's server (its consumers hear of it now) and keeps it for the next receive.</summary>
        public static void Record(TcpConnection connection, TcpException error)
        {
            var server = connection.Server;
            if (server == null) return;
            var store = Stores.GetValue(server, _ => new Store());
            Interlocked.Increment(ref store.Total);
            store.Last = error;
            if (store.Unseen.Count < MaxKept) store.Unseen.Enqueue(error);
            server.RecordError(error, connection);
        }

        /// <summary>The failures kept since the last look; they are then forgotten.</summary>
        public static IReadOnlyList<TcpException> TakeUnseen(TcpServer server)
        {
            var taken = new List<TcpException>();
            if (server == null || !Stores.TryGetValue(server, out var store)) return taken;
            while (store.Unseen.TryDequeue(out var error)) taken.Add(error);
            return taken;
        }

        /// <summary>How many failures the server's handlers had, and the last one.</summary>
        public static (long Count, TcpException Last) Summary(TcpServer server) =>
            server != null && Stores.TryGetValue(server, out var store) ? (Interlocked.Read(ref store.Total), store.Last) : (0, null);
    }

    /// <summary>Mistakes a handler server's parameters likely hold, found at start and told as warnings.</summary>
    internal static class HandlerChecks
    {
        private static readonly HashSet<string> Automatic = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        {
            "_", "args", "this", "input", "true", "false", "null", "PSItem", "Error", "Host", "PSScriptRoot", "PSCommandPath",
            "MyInvocation", "PSBoundParameters", "ExecutionContext", "HOME", "PID", "PWD", "ShellId", "PSVersionTable",
            "PSHOME", "PSCulture", "PSUICulture", "Matches", "LASTEXITCODE", "foreach", "switch", "StackTrace", "IsLinux",
            "IsWindows", "IsMacOS", "IsCoreCLR", "ConfirmPreference", "DebugPreference", "ErrorActionPreference",
            "InformationPreference", "ProgressPreference", "VerbosePreference", "WarningPreference", "WhatIfPreference",
            "OFS", "PSDefaultParameterValues", "PSEmailServer", "PSModuleAutoLoadingPreference", "PSSessionOption",
            "NestedPromptLevel", "Event", "EventArgs", "EventSubscriber", "Sender", "PSCmdlet", "PSStyle", "EnabledExperimentalFeatures",
            "Connection", "Message",
        };

        /// <summary>
        /// Variables the handler reads that it never sets, that are no parameter, and that the
        /// caller's session has: they are empty in the handler's runspace (it needs $using:).
        /// </summary>
        public static IEnumerable<string> MissingUsing(ScriptBlock scriptBlock, SessionState caller)
        {
            var ast = scriptBlock.Ast;
            var assigned = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var a in ast.FindAll(x => x is AssignmentStatementAst, true).Cast<AssignmentStatementAst>())
            {
                foreach (var v in a.Left.FindAll(x => x is VariableExpressionAst, true).Cast<VariableExpressionAst>())
                {
                    assigned.Add(v.VariablePath.UserPath);
                }
            }

            foreach (var p in ast.FindAll(x => x is ParameterAst, true).Cast<ParameterAst>()) assigned.Add(p.Name.VariablePath.UserPath);
            foreach (var f in ast.FindAll(x => x is ForEachStatementAst, true).Cast<ForEachStatementAst>()) assigned.Add(f.Variable.VariablePath.UserPath);

            var usingVariables = new HashSet<VariableExpressionAst>(ast.FindAll(x => x is UsingExpressionAst, true)
                .Cast<UsingExpressionAst>().Select(UsingExpressionAst.ExtractUsingVariable));
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var v in ast.FindAll(x => x is VariableExpressionAst, true).Cast<VariableExpressionAst>())
            {
                if (usingVariables.Contains(v)) continue;
                var path = v.VariablePath;
                if (!path.IsUnqualified && !path.IsScript && !path.IsGlobal && !path.IsLocal) continue;
                var name = path.UserPath;
                int colon = name.IndexOf(':');
                if (colon >= 0) name = name.Substring(colon + 1);
                if (Automatic.Contains(name) || assigned.Contains(name) || assigned.Contains(path.UserPath) || !seen.Add(name)) continue;
                PSVariable found;
                try { found = caller.PSVariable.Get(name); }
                catch (Exception) { continue; }
                if (found == null || (found.Options & (ScopedItemOptions.Constant | ScopedItemOptions.AllScope)) != 0) continue;
                yield return name;
            }
        }

        /// <summary>Pairs of -Reply keys of an unordered table where one pattern also matches the other (which wins is left to chance).</summary>
        public static IEnumerable<(string, string)> OverlappingKeys(IDictionary reply)
        {
            if (reply is System.Collections.Specialized.IOrderedDictionary) yield break;
            var keys = reply.Keys.Cast<object>().Select(k => k?.ToString()).Where(k => !string.IsNullOrEmpty(k)).ToList();
            for (int i = 0; i < keys.Count; i++)
            {
                for (int j = i + 1; j < keys.Count; j++)
                {
                    if (Matches(keys[i], keys[j]) || Matches(keys[j], keys[i])) yield return (keys[i], keys[j]);
                }
            }
        }

        private static bool Matches(string pattern, string text) =>
            WildcardPattern.ContainsWildcardCharacters(pattern) &&
            WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant).IsMatch(text);
    }
}

namespace PSTcp.Commands
{
    /// <summary>How cmdlets tell the test about handler failures.</summary>
    internal static class HandlerFailureReport
    {
        /// <summary>Writes the server's handler failures no receive has shown yet, as HandlerFailed errors.</summary>
        public static void WriteUnseen(System.Management.Automation.Cmdlet cmdlet, TcpServer server)
        {
            if (server == null) return;
            foreach (var error in HandlerFailures.TakeUnseen(server))
            {
                cmdlet.WriteError(TcpErrors.From(error, server));
            }
        }

        /// <summary>At stop: a warning summing up the handler failures the server had.</summary>
        public static void WriteSummary(System.Management.Automation.Cmdlet cmdlet, TcpServer server)
        {
            var (count, last) = HandlerFailures.Summary(server);
            if (count == 0) return;
            HandlerFailures.TakeUnseen(server);
            cmdlet.WriteWarning($"{server.Name} (Id {server.Id}): its handlers failed {count:N0} time(s); the last: {last.Message}");
        }
    }
}

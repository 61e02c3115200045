using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Turns the scriptblocks a handler server was given into the texts its runspaces run, with
    /// each $using:name captured from the caller's session now and read from a variable defined
    /// in every handler runspace. ForEach-Object -Parallel captures the same way (the value at
    /// start, by reference), then passes them as a dictionary per invocation; a handler is
    /// called per message, so here the values are defined once per runspace instead.
    /// </summary>
    internal sealed class HandlerScripts
    {
        private const string VariablePrefix = "__PSTcpUsing_";
        private readonly SessionState _callerState;
        private readonly Dictionary<string, string> _names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

        public HandlerScripts(SessionState callerState)
        {
            _callerState = callerState;
        }

        /// <summary>The runspace variables holding the captured values, by their (rewritten) names.</summary>
        public Dictionary<string, object> Variables { get; } = new Dictionary<string, object>(StringComparer.OrdinalIgnoreCase);

        /// <summary>The texts added so far; a handler's index here is its script number.</summary>
        public List<string> Texts { get; } = new List<string>();

        /// <summary>Where each text came from, by script number.</summary>
        public List<HandlerOrigin> Origins { get; } = new List<HandlerOrigin>();

        /// <summary>Adds a handler; returns its script number.</summary>
        /// <exception cref="ArgumentException">A $using: variable does not exist in the caller's session.</exception>
        public int Add(ScriptBlock scriptBlock)
        {
            Origins.Add(HandlerOrigin.Of(scriptBlock));
            Texts.Add(Rewrite(scriptBlock));
            return Texts.Count - 1;
        }

        private string Rewrite(ScriptBlock scriptBlock)
        {
            var ast = scriptBlock.Ast;
            var usings = ast.FindAll(a => a is UsingExpressionAst, searchNestedScriptBlocks: true)
                .Cast<UsingExpressionAst>()
                .Select(UsingExpressionAst.ExtractUsingVariable)
                .OrderByDescending(v => v.Extent.StartOffset)
                .ToList();
            var text = new StringBuilder(ast.Extent.Text);
            int origin = ast.Extent.StartOffset;
            foreach (var variable in usings)
            {
                var name = Capture(variable);
                text.Remove(variable.Extent.StartOffset - origin, variable.Extent.EndOffset - variable.Extent.StartOffset);
                text.Insert(variable.Extent.StartOffset - origin, "${" + name + "}");
            }

            // A scriptblock literal's extent includes its braces; its body is what runs.
            if (ast.Parent is ScriptBlockExpressionAst && text.Length >= 2 && text[0] == '{' && text[text.Length - 1] == '}')
            {
                text.Remove(text.Length - 1, 1).Remove(0, 1);
            }

            return text.ToString();
        }

        /// <summary>Reads $using:name's value from the caller's scope; returns the runspace variable that holds it.</summary>
        private string Capture(VariableExpressionAst variable)
        {
            var path = variable.VariablePath.UserPath;
            var name = path.Substring(path.IndexOf(':') + 1);
            if (_names.TryGetValue(name, out var known)) return known;
            var found = _callerState.PSVariable.Get(name);
            if (found == null)
            {
                throw new ArgumentException(
                    $"The handler uses {variable.Extent.Text}, but there is no variable '{name}' in the session that starts the server. " +
                    "Define it before Start-TcpServer, or pass the value with -ArgumentList.", name);
            }

            var rewritten = VariablePrefix + _names.Count;
            _names.Add(name, rewritten);
            Variables.Add(rewritten, found.Value);
            return rewritten;
        }
    }
}

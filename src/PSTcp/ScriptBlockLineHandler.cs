using System;
using System.Buffers;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Runs a scriptblock per line in a bounded pool of runspaces, off the pipeline thread, and
    /// writes its output lines back to the client. Lines of one connection run in order (one
    /// invocation per batch); a line whose handler throws sends nothing and is reported.
    /// </summary>
    internal sealed class ScriptBlockLineHandler : LineHandler, IDisposable
    {
        // One invocation per batch of lines: each line's output comes back as one array, or an
        // ErrorRecord when the handler threw.
        private const string BatchScript = @"
param([string] $Handler, [object[]] $Messages)
$__handler = [scriptblock]::Create($Handler)
foreach ($__message in $Messages) {
    try { , @(& $__handler $__message) }
    catch { , $_ }
}";

        private readonly RunspacePool _pool;
        private readonly string _script;
        private readonly byte[] _newLine;

        public ScriptBlockLineHandler(ScriptBlock scriptBlock, int throttleLimit, string modulePath, Encoding encoding)
        {
            _script = scriptBlock.ToString();
            Encoding = encoding;
            _newLine = encoding.GetBytes("\n");
            var state = InitialSessionState.CreateDefault2();
            if (modulePath != null)
            {
                // Handlers can use PSTcp themselves (e.g. Send-TcpLine to another endpoint).
                state.ImportPSModule(new[] { modulePath });
            }

            _pool = RunspaceFactory.CreateRunspacePool(state);
            _pool.SetMinRunspaces(1);
            _pool.SetMaxRunspaces(throttleLimit);
            _pool.ThreadOptions = PSThreadOptions.UseNewThread;
            _pool.Open();
        }

        public Encoding Encoding { get; }

        public override async ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
        {
            var batch = new object[messages.Count];
            for (int i = 0; i < batch.Length; i++) batch[i] = messages[i];

            PSDataCollection<PSObject> results;
            using (var ps = PowerShell.Create())
            {
                ps.RunspacePool = _pool;
                ps.AddScript(BatchScript).AddArgument(_script).AddArgument(batch);
                using (cancellationToken.Register(() => ps.BeginStop(null, null)))
                {
                    try
                    {
                        results = await Task.Factory.FromAsync(ps.BeginInvoke(), ps.EndInvoke).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is RuntimeException || e is InvalidRunspacePoolStateException)
                    {
                        Report(connection, e.Message, e);
                        return;
                    }
                }

                foreach (var error in ps.Streams.Error)
                {
                    Report(connection, error.ToString(), error.Exception);
                }
            }

            var output = new List<byte>();
            int lines = 0;
            int index = 0;
            foreach (var result in results)
            {
                var message = index < messages.Count ? messages[index] : null;
                index++;
                if (result?.BaseObject is ErrorRecord thrown)
                {
                    Report(connection, $"The handler failed on line {message?.Sequence} of connection {connection.Id}: {thrown}", thrown.Exception);
                    continue;
                }

                if (!(result?.BaseObject is object[] items)) continue;
                foreach (var item in items)
                {
                    if (item == null) continue;
                    var text = item is PSObject pso ? pso.ToString() : item.ToString();
                    output.AddRange(Encoding.GetBytes(text));
                    output.AddRange(_newLine);
                    lines++;
                }
            }

            if (output.Count > 0)
            {
                await connection.SendAsync(new ReadOnlyMemory<byte>(output.ToArray()), cancellationToken).ConfigureAwait(false);
                connection.CountMessagesSent(lines);
            }
        }

        private static void Report(TcpConnection connection, string message, Exception inner) =>
            connection.Server?.RecordError(new TcpException(TcpErrorKind.HandlerFailed, message, inner), connection);

        public void Dispose() => _pool.Dispose();
    }
}

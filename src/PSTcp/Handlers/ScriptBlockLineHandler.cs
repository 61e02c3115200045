using System;
using System.Buffers;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Start-TcpServer -ScriptBlock: hands each read batch of a connection to the handler
    /// workers, which call the scriptblock per message in order, then sends what it wrote in one
    /// write, framed. The core never calls this concurrently for one connection, so a
    /// connection's messages stay in order while other connections run on other workers.
    /// </summary>
    internal class ScriptBlockLineHandler : LineHandler, IDisposable
    {
        private static readonly HandlerAction CallHandler = HandlerAction.Call(0);

        public ScriptBlockLineHandler(HandlerWorkers workers, byte[] newLine)
        {
            Workers = workers;
            NewLine = newLine;
        }

        // Posts each batch to the workers and waits without blocking; fixed replies are a lookup.
        internal override bool RunsInline => true;

        /// <summary>Null for a -Reply server whose answers are all fixed strings.</summary>
        protected HandlerWorkers Workers { get; }

        /// <summary>-NewLine in the server's encoding: the terminator of Line-framed output.</summary>
        protected byte[] NewLine { get; }

        public override ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken) =>
            RunOnWorkersAsync(connection, messages, null, CallHandler, cancellationToken);

        /// <summary>
        /// Runs a batch on a worker and sends its output. <paramref name="actions"/> says what to
        /// do per message, or null for <paramref name="action"/> on every one.
        /// </summary>
        protected async ValueTask RunOnWorkersAsync(TcpConnection connection, IReadOnlyList<TcpMessage> messages,
            HandlerAction[] actions, HandlerAction action, CancellationToken cancellationToken)
        {
            // The core reuses its list after this call; an aborted connection returns early.
            var copy = new TcpMessage[messages.Count];
            for (int i = 0; i < copy.Length; i++) copy[i] = messages[i];
            var output = new HandlerOutput(connection, NewLine);
            var batch = new HandlerBatch(connection, copy, actions, action, output);
            using (cancellationToken.Register(state => ((HandlerBatch)state).Cancel(), batch))
            {
                Workers.Post(batch);
                await batch.Done.ConfigureAwait(false);
            }

            // Not reached when cancelled: the worker may still be writing into the buffer.
            try
            {
                await SendAsync(connection, output, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                output.Dispose();
            }
        }

        protected static ValueTask SendAsync(TcpConnection connection, HandlerOutput output, CancellationToken cancellationToken) =>
            output.SendAsync(cancellationToken);

        public void Dispose() => Workers?.Dispose();
    }
}

using System;
using System.Buffers;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// -Greeting: sends its messages (framed like replies; a New-TcpReply may delay them) to each
    /// accepted connection before anything else, then hands everything to the server's own
    /// handler (echo, scriptblock, replies, conversation). The first batch of messages waits
    /// for the greeting to be sent, so no answer can overtake it.
    /// </summary>
    internal sealed class GreetingLineHandler : LineHandler, IDisposable
    {
        private readonly LineHandler _inner;
        private readonly object[] _greeting;
        private readonly byte[] _newLine;
        private readonly ConditionalWeakTable<TcpConnection, Task> _sent = new ConditionalWeakTable<TcpConnection, Task>();

        public GreetingLineHandler(LineHandler inner, object[] greeting, byte[] newLine)
        {
            _inner = inner;
            _greeting = greeting;
            _newLine = newLine;
        }

        public override bool NeedsMessages => _inner.NeedsMessages;

        public override bool WantsData => _inner.WantsData;

        internal override bool RunsInline => _inner.RunsInline;

        public override void OnConnected(TcpConnection connection)
        {
            _sent.Add(connection, GreetAsync(connection));
            _inner.OnConnected(connection);
        }

        private async Task GreetAsync(TcpConnection connection)
        {
            var output = new HandlerOutput(connection, _newLine);
            try
            {
                foreach (var item in _greeting)
                {
                    if (item != null) output.Write(item);
                }

                // Not in a handler: a closing or resetting greeting reply closes at once.
                await output.SendAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TcpException || e is OperationCanceledException || e is ObjectDisposedException)
            {
                // The peer left before its greeting: nothing to tell.
            }
            catch (ArgumentException e)
            {
                connection.Server?.RecordError(new TcpException(TcpErrorKind.HandlerFailed,
                    $"The greeting can't be sent on connection {connection.Id}: {e.Message}", e), connection);
            }
            finally
            {
                output.Dispose();
            }
        }

        private Task Greeting(TcpConnection connection) => _sent.TryGetValue(connection, out var task) ? task : Task.CompletedTask;

        public override async ValueTask OnLinesAsync(TcpConnection connection, ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages, int lineCount, CancellationToken cancellationToken)
        {
            var greeting = Greeting(connection);
            if (!greeting.IsCompleted) await greeting.ConfigureAwait(false);
            await _inner.OnLinesAsync(connection, rawLines, messages, lineCount, cancellationToken).ConfigureAwait(false);
        }

        public override async ValueTask OnDataAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            var greeting = Greeting(connection);
            if (!greeting.IsCompleted) await greeting.ConfigureAwait(false);
            await _inner.OnDataAsync(connection, data, cancellationToken).ConfigureAwait(false);
        }

        public override ValueTask OnReceiveEndedAsync(TcpConnection connection) => _inner.OnReceiveEndedAsync(connection);

        public override void OnDisconnected(TcpConnection connection) => _inner.OnDisconnected(connection);

        public void Dispose() => (_inner as IDisposable)?.Dispose();
    }
}

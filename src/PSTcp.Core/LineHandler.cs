using System.Buffers;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// What a server does with the lines a connection sends. Called once per batch of complete
    /// lines read together, in order, never concurrently for one connection; the messages are
    /// queued for consumers after the handler returns.
    /// </summary>
    public abstract class LineHandler
    {
        /// <param name="connection">The connection the lines came from.</param>
        /// <param name="rawLines">The lines exactly as read, terminators included. Valid only until the returned task completes.</param>
        /// <param name="messages">One message per line. The list is reused after the call.</param>
        /// <param name="cancellationToken">Cancelled when the connection is aborted.</param>
        public abstract ValueTask OnLinesAsync(
            TcpConnection connection,
            ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages,
            CancellationToken cancellationToken);

        public virtual void OnConnected(TcpConnection connection) { }

        public virtual void OnDisconnected(TcpConnection connection) { }
    }

    /// <summary>Writes every line back to its sender byte for byte, terminator included.</summary>
    public sealed class EchoLineHandler : LineHandler
    {
        public static readonly EchoLineHandler Instance = new EchoLineHandler();

        public override ValueTask OnLinesAsync(
            TcpConnection connection,
            ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages,
            CancellationToken cancellationToken)
        {
            // Straight from the receive buffers: one send per batch, no copy.
            return connection.SendAsync(rawLines, cancellationToken);
        }
    }
}

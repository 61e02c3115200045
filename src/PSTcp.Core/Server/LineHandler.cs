using System;
using System.Buffers;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// What a server does with the lines a connection sends. Called once per batch of complete
    /// lines read together, in order, never concurrently for one connection; the messages are
    /// queued for consumers before the handler is called, so nothing it sends can overtake them.
    /// A handler outside this module is called on the thread pool (it may block); the module's
    /// own, which never block, run on the thread that read the data (<see cref="RunsInline"/>).
    /// </summary>
    public abstract class LineHandler
    {
        /// <param name="connection">The connection the lines came from.</param>
        /// <param name="rawLines">The lines exactly as read, terminators included. Valid only until the returned task completes.</param>
        /// <param name="messages">One message per line (empty when <see cref="NeedsMessages"/> is false and nothing is queued). The list is reused after the call.</param>
        /// <param name="lineCount">How many lines <paramref name="rawLines"/> holds.</param>
        /// <param name="cancellationToken">Cancelled when the connection is aborted.</param>
        public abstract ValueTask OnLinesAsync(
            TcpConnection connection,
            ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages,
            int lineCount,
            CancellationToken cancellationToken);

        /// <summary>Whether the handler reads the messages; if not and nothing is queued, none are built.</summary>
        public virtual bool NeedsMessages => true;

        public virtual void OnConnected(TcpConnection connection) { }

        /// <summary>Whether <see cref="OnDataAsync"/> wants every read as it arrives, before framing (a relay forwards bytes at once).</summary>
        public virtual bool WantsData => false;

        /// <summary>
        /// Called with each read's bytes, in order, before they are framed (only when
        /// <see cref="WantsData"/>). Reading waits for the returned task: backpressure.
        /// </summary>
        /// <param name="connection">The connection the bytes came from.</param>
        /// <param name="data">Valid only until the returned task completes.</param>
        /// <param name="cancellationToken">Cancelled when the connection is aborted.</param>
        public virtual ValueTask OnDataAsync(TcpConnection connection, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => default;

        /// <summary>
        /// The peer closed its sending side (FIN) and every message was handled. The connection
        /// stays open for sending until the returned task completes (a relay passes the
        /// half-close on and waits for the other side), then closes.
        /// </summary>
        public virtual ValueTask OnReceiveEndedAsync(TcpConnection connection) => default;

        public virtual void OnDisconnected(TcpConnection connection) { }

        /// <summary>
        /// Whether the handler's calls never block, so they may run inline on the thread that
        /// read the data (a poller's, shared by many connections). Only the module's own handlers
        /// say so (echo, broadcast, relay, fixed replies, handing work to its workers); any
        /// other handler is called on the thread pool, a connection's calls still in order.
        /// </summary>
        internal virtual bool RunsInline => false;

        /// <summary>
        /// Whether the handler may close its own connection from inside <see cref="OnLinesAsync"/>
        /// (then a close called there is told apart from one called from outside, at a small
        /// cost per batch). The core's echo and relay handlers never do.
        /// </summary>
        internal virtual bool MayCloseItsConnection => true;
    }

    /// <summary>Writes every line back to its sender byte for byte, terminator included.</summary>
    public sealed class EchoLineHandler : LineHandler
    {
        public static readonly EchoLineHandler Instance = new EchoLineHandler();

        internal override bool RunsInline => true;
        internal override bool MayCloseItsConnection => false;

        public override bool NeedsMessages => false;

        public override ValueTask OnLinesAsync(
            TcpConnection connection,
            ReadOnlySequence<byte> rawLines,
            IReadOnlyList<TcpMessage> messages,
            int lineCount,
            CancellationToken cancellationToken)
        {
            // Straight from the receive buffers: one send per batch, no copy.
            connection.CountMessagesSent(lineCount);
            return connection.SendAsync(rawLines, cancellationToken);
        }
    }
}

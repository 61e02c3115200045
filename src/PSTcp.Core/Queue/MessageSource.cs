using System;

namespace PSTcp
{
    /// <summary>
    /// Where messages come from: a server (all its connections) or a client connection. The
    /// source owns its queue, tells consumers about errors and connections, and says when and
    /// how it ended; the queue only holds messages.
    /// </summary>
    public interface IMessageSource
    {
        string Name { get; }

        /// <summary>The messages read and not yet taken by a consumer.</summary>
        MessageQueue Queue { get; }

        /// <summary>Raised (on a socket thread) for errors consumers should see, e.g. LineTooLong.</summary>
        event EventHandler<TcpErrorEventArgs> ErrorReported;

        /// <summary>Raised (on a socket thread) when a connection of this source opens or closes.</summary>
        event EventHandler<TcpConnectionEventArgs> ConnectionChanged;

        /// <summary>Why the source ended, when it was not a clean end (a client connection's reset, say); else null.</summary>
        TcpException Error { get; }
    }

    public sealed class TcpErrorEventArgs : EventArgs
    {
        public TcpErrorEventArgs(TcpException error, TcpConnection connection)
        {
            Error = error;
            Connection = connection;
        }

        public TcpException Error { get; }

        public TcpConnection Connection { get; }
    }

    public sealed class TcpConnectionEventArgs : EventArgs
    {
        public TcpConnectionEventArgs(TcpConnection connection, bool opened)
        {
            Connection = connection;
            Opened = opened;
        }

        public TcpConnection Connection { get; }

        /// <summary>True when the connection was accepted, false when it closed.</summary>
        public bool Opened { get; }

        public override string ToString() => Opened
            ? $"Connection {Connection.Id} from {Connection.RemoteEndPoint} accepted."
            : $"Connection {Connection.Id} from {Connection.RemoteEndPoint} closed after {Connection.MessagesReceived:N0} message(s) received, {Connection.MessagesSent:N0} sent" +
              (Connection.Error != null ? $": {Connection.Error.Message}" : ".");
    }
}

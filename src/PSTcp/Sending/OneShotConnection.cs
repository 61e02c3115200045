using System;

namespace PSTcp.Commands
{
    /// <summary>
    /// The connection a one-shot cmdlet (-HostName -Port) opens for itself: registered while it
    /// lives, so Remove-Module closes it too; closed gracefully when the cmdlet ends; aborted on
    /// Ctrl+C or when the pipeline fails upstream, so it never outlives its cmdlet.
    /// </summary>
    internal sealed class OneShotConnection : IDisposable
    {
        private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

        public OneShotConnection(TcpConnection connection)
        {
            Connection = connection;
            TcpRegistry.Add(connection);
        }

        public TcpConnection Connection { get; }

        /// <summary>End of the cmdlet: flush, FIN, close (a reset past the timeout).</summary>
        public void Close(TcpCmdlet cmdlet)
        {
            cmdlet.Wait(Connection.CloseAsync(CloseTimeout));
            TcpRegistry.Remove(Connection);
        }

        /// <summary>Ctrl+C: a send stuck on a peer that doesn't read ends with the connection.</summary>
        public void Abort() => Connection.Abort();

        public void Dispose()
        {
            if (Connection.State != ConnectionState.Closed) Connection.Abort();
            TcpRegistry.Remove(Connection);
        }
    }
}

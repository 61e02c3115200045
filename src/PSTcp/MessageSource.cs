using System;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>Where Receive-TcpMessage and consumer jobs take messages from: a server or a client connection.</summary>
    internal sealed class MessageSource
    {
        public MessageSource(TcpServer server)
        {
            Queue = server.Queue;
            Name = server.Name;
            Location = server.LocalEndPoint.ToString();
            Target = server;
        }

        public MessageSource(TcpConnection connection)
        {
            Queue = connection.Queue;
            Name = connection.Name;
            Location = connection.RemoteEndPoint.ToString();
            Target = connection;
        }

        public MessageQueue Queue { get; }

        public string Name { get; }

        public string Location { get; }

        public object Target { get; }

        public WarningRecord TakeDropWarning()
        {
            long drops = Queue.TakeUnreportedDrops();
            return drops == 0 ? null : new WarningRecord(
                $"{drops} message(s) from {Name} were dropped because its queue was full " +
                $"(capacity {Queue.Capacity}, mode {Queue.FullMode}). Consume faster, raise -QueueCapacity, or use -QueueFullMode Wait.");
        }

        /// <summary>The error a queue ended with (the connection was reset, a line was too long …), if any.</summary>
        public static Exception CompletionError(System.Threading.Tasks.Task completion) =>
            completion.IsFaulted ? completion.Exception.GetBaseException() : null;
    }
}

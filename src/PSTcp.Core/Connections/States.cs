namespace PSTcp
{
    /// <summary>Lifecycle of a <see cref="TcpServer"/>.</summary>
    public enum ServerState
    {
        Running,
        Stopping,
        Stopped,
        Failed,
        /// <summary>Suspend-TcpServer: the port stays the server's, new connections are refused; open ones go on.</summary>
        Suspended,
    }

    /// <summary>What a suspended server does with new connection attempts.</summary>
    public enum SuspendMode
    {
        /// <summary>Accepts and resets at once: the client's connect is cut (ECONNRESET).</summary>
        Refuse,
        /// <summary>Stops accepting and shrinks the backlog: once it is full, connects time out.</summary>
        Timeout,
    }

    /// <summary>Lifecycle of a <see cref="TcpConnection"/>.</summary>
    public enum ConnectionState
    {
        Open,
        /// <summary>Our sending side is shut down (FIN sent); lines from the peer still arrive.</summary>
        HalfClosed,
        Closing,
        Closed,
    }

    /// <summary>What a full message queue does with the next message.</summary>
    public enum QueueFullMode
    {
        /// <summary>Lossless: reading from the connection pauses until a consumer takes a message.</summary>
        Wait,
        /// <summary>The oldest queued message is dropped to make room (the default).</summary>
        DropOldest,
        /// <summary>The new message is dropped.</summary>
        DropNewest,
    }

    /// <summary>PROXY protocol versions (HAProxy's specification): the text v1 and the binary v2.</summary>
    public enum ProxyProtocolVersion { None, V1, V2 }

    /// <summary>Which way a message went: from the peer to us, or, on a relay, which side sent it.</summary>
    public enum MessageDirection { Inbound, ClientToTarget, TargetToClient }
}

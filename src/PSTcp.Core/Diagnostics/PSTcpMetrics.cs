using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;

namespace PSTcp.Diagnostics
{
    /// <summary>
    /// The module's System.Diagnostics.Metrics meter, <c>PSTcp</c>, which dotnet-counters,
    /// OpenTelemetry and a <see cref="MeterListener"/> read. Names follow the OpenTelemetry
    /// conventions (as Kestrel's do); each measurement carries the server's name
    /// (<c>pstcp.server.name</c>), or a client connection's (<c>pstcp.connection.name</c>).
    /// Zero cost when nobody listens: every hook checks <see cref="Instrument.Enabled"/> first and
    /// allocates nothing (a tag is a struct over strings that already exist).
    /// </summary>
    public static class PSTcpMetrics
    {
        public const string MeterName = "PSTcp";
        public const string ServerNameTag = "pstcp.server.name";
        public const string ConnectionNameTag = "pstcp.connection.name";
        /// <summary>On <c>pstcp.connections.rejected</c>: why (not_allowed, max_connections, suspended, proxy_protocol).</summary>
        public const string RejectionReasonTag = "pstcp.rejection.reason";

        private static readonly Meter s_meter = new Meter(MeterName, typeof(PSTcpMetrics).Assembly.GetName().Version?.ToString());

        private static readonly UpDownCounter<long> s_active = s_meter.CreateUpDownCounter<long>(
            "pstcp.connections.active", "{connection}", "Connections open now (accepted by a server, or opened by a client).");
        private static readonly Counter<long> s_connections = s_meter.CreateCounter<long>(
            "pstcp.connections", "{connection}", "Connections accepted by a server or opened by a client.");
        private static readonly Counter<long> s_rejected = s_meter.CreateCounter<long>(
            "pstcp.connections.rejected", "{connection}", "Connections a server closed at once: not allowed, too many open, suspended, or a bad PROXY header.");
        private static readonly Histogram<double> s_duration = s_meter.CreateHistogram<double>(
            "pstcp.connection.duration", "s", "How long connections stayed open.");
        private static readonly Counter<long> s_messagesReceived = s_meter.CreateCounter<long>(
            "pstcp.messages.received", "{message}", "Messages (lines, frames, chunks) read.");
        private static readonly Counter<long> s_messagesSent = s_meter.CreateCounter<long>(
            "pstcp.messages.sent", "{message}", "Messages written by handlers and senders.");
        private static readonly Counter<long> s_bytesReceived = s_meter.CreateCounter<long>(
            "pstcp.bytes.received", "By", "Bytes read from the wire (PROXY headers and framing included).");
        private static readonly Counter<long> s_bytesSent = s_meter.CreateCounter<long>(
            "pstcp.bytes.sent", "By", "Bytes written to the wire (framing included).");
        private static readonly Counter<long> s_dropped = s_meter.CreateCounter<long>(
            "pstcp.queue.dropped", "{message}", "Messages read but dropped by a full queue.");
        private static readonly Counter<long> s_handlerFailures = s_meter.CreateCounter<long>(
            "pstcp.handler.failures", "{failure}", "Handler scripts that failed on a message or connection.");
        private static readonly UpDownCounter<long> s_tlsHandshakes = s_meter.CreateUpDownCounter<long>(
            "pstcp.tls.handshakes.active", "{handshake}", "TLS handshakes in progress.");

        // Servers whose queue length is observed; only read when someone listens.
        private static readonly ConcurrentDictionary<TcpServer, byte> s_servers = new ConcurrentDictionary<TcpServer, byte>();

        static PSTcpMetrics()
        {
            s_meter.CreateObservableUpDownCounter<long>("pstcp.queue.length", ObserveQueueLengths, "{message}",
                "Messages in each server's queue, not yet taken by a consumer.");
        }

        /// <summary>The meter (for tests and hosts that want to hold it).</summary>
        public static Meter Meter => s_meter;

        private static IEnumerable<Measurement<long>> ObserveQueueLengths()
        {
            foreach (var server in s_servers.Keys)
            {
                yield return new Measurement<long>(server.QueueLength, new KeyValuePair<string, object>(ServerNameTag, server.Name));
            }
        }

        internal static void ServerStarted(TcpServer server) => s_servers[server] = 0;

        internal static void ServerStopped(TcpServer server) => s_servers.TryRemove(server, out _);

        // A server's connections carry its name; a client connection the name the user gave it
        // (unnamed ones, "ConnectionN", share one untagged series: a name each would grow without bound).
        private static void Add(Counter<long> counter, TcpConnection connection, long value)
        {
            if (connection.Server != null) counter.Add(value, new KeyValuePair<string, object>(ServerNameTag, connection.Server.Name));
            else if (connection.MetricName != null) counter.Add(value, new KeyValuePair<string, object>(ConnectionNameTag, connection.MetricName));
            else counter.Add(value);
        }

        private static void Add(UpDownCounter<long> counter, TcpConnection connection, long value)
        {
            if (connection.Server != null) counter.Add(value, new KeyValuePair<string, object>(ServerNameTag, connection.Server.Name));
            else if (connection.MetricName != null) counter.Add(value, new KeyValuePair<string, object>(ConnectionNameTag, connection.MetricName));
            else counter.Add(value);
        }

        private static void Record(Histogram<double> histogram, TcpConnection connection, double value)
        {
            if (connection.Server != null) histogram.Record(value, new KeyValuePair<string, object>(ServerNameTag, connection.Server.Name));
            else if (connection.MetricName != null) histogram.Record(value, new KeyValuePair<string, object>(ConnectionNameTag, connection.MetricName));
            else histogram.Record(value);
        }

        /// <summary>A connection starts: counted, and active when someone listens (true: decrement it at close).</summary>
        internal static bool ConnectionOpened(TcpConnection connection)
        {
            if (s_connections.Enabled) Add(s_connections, connection, 1);
            if (!s_active.Enabled) return false;
            Add(s_active, connection, 1);
            return true;
        }

        /// <summary>A connection ended: no longer active (if it was counted so), and how long it lasted.</summary>
        internal static void ConnectionClosed(TcpConnection connection, bool countedActive)
        {
            if (countedActive) Add(s_active, connection, -1);
            if (s_duration.Enabled) Record(s_duration, connection, (DateTimeOffset.Now - connection.ConnectedAt).TotalSeconds);
        }

        internal static void Rejected(TcpServer server, string reason)
        {
            if (s_rejected.Enabled)
            {
                s_rejected.Add(1, new KeyValuePair<string, object>(ServerNameTag, server.Name), new KeyValuePair<string, object>(RejectionReasonTag, reason));
            }
        }

        internal static void MessagesReceived(TcpConnection connection, int count)
        {
            if (s_messagesReceived.Enabled) Add(s_messagesReceived, connection, count);
        }

        internal static void MessagesSent(TcpConnection connection, int count)
        {
            if (s_messagesSent.Enabled) Add(s_messagesSent, connection, count);
        }

        internal static void BytesReceived(TcpConnection connection, int count)
        {
            if (s_bytesReceived.Enabled) Add(s_bytesReceived, connection, count);
        }

        internal static void BytesSent(TcpConnection connection, long count)
        {
            if (s_bytesSent.Enabled) Add(s_bytesSent, connection, count);
        }

        internal static void Dropped(TcpConnection origin, int count)
        {
            if (!s_dropped.Enabled) return;
            if (origin != null) Add(s_dropped, origin, count);
            else s_dropped.Add(count);
        }

        internal static void HandlerFailed(TcpServer server)
        {
            if (s_handlerFailures.Enabled) s_handlerFailures.Add(1, new KeyValuePair<string, object>(ServerNameTag, server.Name));
        }

        /// <summary>A TLS handshake begins; true when counted (end it with <see cref="TlsHandshakeEnded"/>).</summary>
        internal static bool TlsHandshakeStarted(KeyValuePair<string, object> tag)
        {
            if (!s_tlsHandshakes.Enabled) return false;
            s_tlsHandshakes.Add(1, tag);
            return true;
        }

        internal static void TlsHandshakeEnded(bool counted, KeyValuePair<string, object> tag)
        {
            if (counted) s_tlsHandshakes.Add(-1, tag);
        }
    }
}

using System;
using System.Globalization;

namespace PSTcp.Commands
{
    /// <summary>Helpers the format views call: readable sizes and durations.</summary>
    public static class DisplayFormat
    {
        private static readonly string[] Units = { "B", "KB", "MB", "GB", "TB" };

        /// <summary>1536 → "1.5 KB".</summary>
        public static string Bytes(long bytes)
        {
            double value = bytes;
            int unit = 0;
            while (value >= 1024 && unit < Units.Length - 1)
            {
                value /= 1024;
                unit++;
            }

            return unit == 0
                ? bytes.ToString(CultureInfo.CurrentCulture) + " B"
                : value.ToString(value < 10 ? "0.0" : "0", CultureInfo.CurrentCulture) + " " + Units[unit];
        }

        /// <summary>1234567 → "1,234,567" (the current culture's separator); empty for a missing value.</summary>
        public static string Count(object value)
        {
            switch (value)
            {
                case null: return string.Empty;
                case System.Management.Automation.PSObject pso: return Count(pso.BaseObject);
                case IFormattable number: return number.ToString("N0", CultureInfo.CurrentCulture);
                default: return value.ToString();
            }
        }

        // The server's and connection's settings are internal to the core (not part of the
        // objects' surface): the list views read them here. A deserialized object has none.

        /// <summary>"1 open, 3 total, 0 refused (max 10,000), 0 rejected".</summary>
        public static string ServerConnections(object value)
        {
            if (!(Unwrap(value) is TcpServer server)) return string.Empty;
            return string.Format(CultureInfo.CurrentCulture, "{0:N0} open, {1:N0} total, {2:N0} refused (max {3:N0}), {4:N0} rejected",
                server.ConnectionCount, server.TotalConnections, server.ConnectionsRefused, server.Options.MaxConnections, server.ConnectionsRejected);
        }

        /// <summary>"12 of 10,000, 1.2 KB of 64 MB, DropOldest", or "none (-NoQueue)".</summary>
        public static string ServerQueue(object value)
        {
            if (!(Unwrap(value) is TcpServer server)) return string.Empty;
            return server.Options.QueueMessages
                ? string.Format(CultureInfo.CurrentCulture, "{0:N0} of {1:N0}, {2} of {3}, {4}", server.QueueLength, server.Options.QueueCapacity,
                    Bytes(server.QueueBytes), Bytes(server.Options.QueueByteLimit), server.Options.QueueFullMode)
                : "none (-NoQueue)";
        }

        /// <summary>The queue a connection feeds (its own, or its server's): "3 of 10,000, 120 B of 64 MB, Wait".</summary>
        public static string ConnectionQueue(object value)
        {
            if (!(Unwrap(value) is TcpConnection connection)) return string.Empty;
            var queue = connection.Queue;
            if (queue == null || (connection.Server != null && !connection.Server.Options.QueueMessages)) return "none (-NoQueue)";
            return string.Format(CultureInfo.CurrentCulture, "{0:N0} of {1:N0}, {2} of {3}, {4}", queue.Count, queue.Capacity,
                Bytes(queue.Bytes), Bytes(queue.ByteLimit), queue.FullMode);
        }

        /// <summary>"line 64 KB, idle never".</summary>
        public static string ServerLimits(object value)
        {
            if (!(Unwrap(value) is TcpServer server)) return string.Empty;
            var idle = server.Options.IdleTimeout > TimeSpan.Zero ? server.Options.IdleTimeout.ToString("c", CultureInfo.InvariantCulture) : "never";
            return $"line {Bytes(server.Options.MaxLineLength)}, idle {idle}";
        }

        /// <summary>The certificate's subject, or "off".</summary>
        public static string ServerTls(object value)
        {
            if (!(Unwrap(value) is TcpServer server)) return string.Empty;
            return server.Options.Certificate?.Subject ?? "off";
        }

        /// <summary>The connection's encoding by its web name ("utf-8").</summary>
        public static string EncodingName(object value) =>
            Unwrap(value) is TcpConnection connection ? connection.Encoding?.WebName ?? string.Empty : string.Empty;

        private static object Unwrap(object value) => value is System.Management.Automation.PSObject pso ? pso.BaseObject : value;

        /// <summary>Time since <paramref name="since"/>, as d.hh:mm:ss.</summary>
        public static string Age(DateTimeOffset since)
        {
            var age = DateTimeOffset.Now - since;
            return new TimeSpan(age.Days, age.Hours, age.Minutes, age.Seconds).ToString("c", CultureInfo.InvariantCulture);
        }

        /// <summary>Bytes of a binary message shown in hex in a table's Text column.</summary>
        internal const int HexPreviewBytes = 16;

        /// <summary>
        /// A message's Text column: text with its control characters escaped (\r, \n, \t, \xNN),
        /// or for a binary message (control bytes other than tab, CR and LF, or bytes the encoding
        /// can't decode) its length and its first bytes in hex: "[6 B] 5A 00 00 00 05 49".
        /// </summary>
        public static string MessageText(string text, object data)
        {
            if (data is System.Management.Automation.PSObject pso) data = pso.BaseObject;
            var bytes = data as byte[];
            text = text ?? string.Empty;
            if (bytes != null && IsBinary(text, bytes))
            {
                var preview = new System.Text.StringBuilder();
                preview.Append('[').Append(bytes.Length.ToString("N0", CultureInfo.CurrentCulture)).Append(" B]");
                int shown = Math.Min(bytes.Length, HexPreviewBytes);
                for (int i = 0; i < shown; i++) preview.Append(' ').Append(bytes[i].ToString("X2", CultureInfo.InvariantCulture));
                if (bytes.Length > shown) preview.Append(" \u2026");
                return preview.ToString();
            }

            return Escape(text);
        }

        private static bool IsBinary(string text, byte[] bytes)
        {
            foreach (byte b in bytes)
            {
                if ((b < 0x20 && b != (byte)'\t' && b != (byte)'\r' && b != (byte)'\n') || b == 0x7F) return true;
            }

            return text.IndexOf('\uFFFD') >= 0;
        }

        private static string Escape(string text)
        {
            System.Text.StringBuilder escaped = null;
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                string replacement = c == '\r' ? "\\r" : c == '\n' ? "\\n" : c == '\t' ? "\\t"
                    : char.IsControl(c) ? "\\x" + ((int)c).ToString("X2", CultureInfo.InvariantCulture) : null;
                if (replacement == null)
                {
                    escaped?.Append(c);
                    continue;
                }

                if (escaped == null) escaped = new System.Text.StringBuilder(text, 0, i, text.Length + 8);
                escaped.Append(replacement);
            }

            return escaped?.ToString() ?? text;
        }
    }
}

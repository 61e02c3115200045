using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;

namespace PSTcp.Commands
{
    /// <summary>The servers, client connections and consumer jobs of this process.</summary>
    internal static class TcpRegistry
    {
        private static readonly ConcurrentDictionary<int, TcpServer> s_servers = new ConcurrentDictionary<int, TcpServer>();
        private static readonly ConcurrentDictionary<int, TcpConnection> s_clients = new ConcurrentDictionary<int, TcpConnection>();
        private static readonly ConcurrentDictionary<System.Guid, TcpConsumerJob> s_jobs = new ConcurrentDictionary<System.Guid, TcpConsumerJob>();

        public static IEnumerable<TcpServer> Servers => s_servers.Values.OrderBy(s => s.Id);

        public static IEnumerable<TcpConnection> Clients => s_clients.Values.OrderBy(c => c.Id);

        public static void Add(TcpServer server) => s_servers[server.Id] = server;

        public static void Remove(TcpServer server) => s_servers.TryRemove(server.Id, out _);

        public static void Add(TcpConnection connection) => s_clients[connection.Id] = connection;

        public static void Remove(TcpConnection connection) => s_clients.TryRemove(connection.Id, out _);

        public static void Add(TcpConsumerJob job) => s_jobs[job.InstanceId] = job;

        public static void Remove(TcpConsumerJob job) => s_jobs.TryRemove(job.InstanceId, out _);

        public static TcpServer FindServer(int id) => s_servers.TryGetValue(id, out var server) ? server : null;

        /// <summary>
        /// The running server of this process that holds <paramref name="port"/> on an address
        /// overlapping <paramref name="address"/> (the same one, or either is a wildcard), or the
        /// Unix socket <paramref name="unixPath"/>; null when none does (another program holds it).
        /// </summary>
        public static TcpServer PortHolder(string address, int port, string unixPath)
        {
            var running = Servers.Where(s => s.State == ServerState.Running || s.State == ServerState.Stopping).ToList();
            if (unixPath != null)
            {
                return running.FirstOrDefault(s => s.UnixSocketPath != null &&
                    string.Equals(System.IO.Path.GetFullPath(s.UnixSocketPath), System.IO.Path.GetFullPath(unixPath), StringComparison.Ordinal));
            }

            if (port <= 0) return null;
            var onPort = running.Where(s => s.UnixSocketPath == null && s.Port == port).ToList();
            if (!System.Net.IPAddress.TryParse(address ?? string.Empty, out var wanted))
            {
                // A host name (localhost): any of this process's servers on that port is the likely holder.
                return onPort.FirstOrDefault();
            }

            bool IsWildcard(System.Net.IPAddress a) => a.Equals(System.Net.IPAddress.Any) || a.Equals(System.Net.IPAddress.IPv6Any);
            var exact = onPort.FirstOrDefault(s => (s.LocalEndPoint as System.Net.IPEndPoint)?.Address.Equals(wanted) == true);
            return exact ?? onPort.FirstOrDefault(s => s.LocalEndPoint is System.Net.IPEndPoint ep && (IsWildcard(ep.Address) || IsWildcard(wanted)));
        }

        /// <summary>A connection by id: a client one, or one accepted by a server of this process.</summary>
        public static TcpConnection FindConnection(int id)
        {
            if (s_clients.TryGetValue(id, out var client)) return client;
            return s_servers.Values.SelectMany(s => s.Connections).FirstOrDefault(c => c.Id == id);
        }

        /// <summary>Servers by id, in order; each id that names no server is reported (ServerNotFound).</summary>
        public static List<TcpServer> ServersById(IEnumerable<int> ids, Action<ErrorRecord> writeError)
        {
            var found = new List<TcpServer>();
            foreach (var id in ids)
            {
                var server = FindServer(id);
                if (server == null)
                    writeError(TcpErrors.From(TcpErrorKind.ServerNotFound, $"No server has Id {id}.", id));
                else
                    found.Add(server);
            }

            return found;
        }

        /// <summary>
        /// Servers whose name matches each pattern (wildcards, case-insensitive). A name that
        /// matches nothing is reported (ServerNotFound); a wildcard pattern only when
        /// <paramref name="reportEmptyWildcards"/> is set, as Get-* cmdlets stay quiet there.
        /// </summary>
        public static List<TcpServer> ServersByName(IEnumerable<string> names, bool reportEmptyWildcards, Action<ErrorRecord> writeError)
        {
            var found = new List<TcpServer>();
            foreach (var name in names)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = Servers.Where(s => pattern.IsMatch(s.Name)).ToList();
                if (matches.Count == 0 && (reportEmptyWildcards || !WildcardPattern.ContainsWildcardCharacters(name)))
                {
                    writeError(TcpErrors.From(TcpErrorKind.ServerNotFound, $"No server is named '{name}'.", name));
                }

                found.AddRange(matches);
            }

            return found;
        }

        /// <summary>Connections by id (client ones and accepted ones), in order; each id that names none is reported (ConnectionNotFound).</summary>
        public static List<TcpConnection> ConnectionsById(IEnumerable<int> ids, Action<ErrorRecord> writeError)
        {
            var found = new List<TcpConnection>();
            foreach (var id in ids)
            {
                var connection = FindConnection(id);
                if (connection == null)
                    writeError(TcpErrors.From(TcpErrorKind.ConnectionNotFound, $"No connection has Id {id}.", id));
                else
                    found.Add(connection);
            }

            return found;
        }

        /// <summary>
        /// Client connections whose name matches each pattern (wildcards, case-insensitive); a
        /// name without wildcards that matches none is reported (ConnectionNotFound).
        /// </summary>
        public static List<TcpConnection> ConnectionsByName(IEnumerable<string> names, Action<ErrorRecord> writeError)
        {
            var found = new List<TcpConnection>();
            foreach (var name in names)
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                var matches = Clients.Where(c => pattern.IsMatch(c.Name ?? string.Empty)).ToList();
                if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(name))
                {
                    writeError(TcpErrors.From(TcpErrorKind.ConnectionNotFound, $"No connection is named '{name}'.", name));
                }

                found.AddRange(matches.Where(c => !found.Contains(c)));
            }

            return found;
        }

        /// <summary>Stops everything: Remove-Module must leave no socket bound and no job running.</summary>
        public static void Shutdown()
        {
            foreach (var job in s_jobs.Values.ToList())
            {
                job.StopJob();
            }

            foreach (var connection in s_clients.Values.ToList())
            {
                connection.Abort();
                Remove(connection);
            }

            var stops = s_servers.Values.Select(s => s.StopAsync()).ToArray();
            System.Threading.Tasks.Task.WaitAll(stops, System.TimeSpan.FromSeconds(10));
            s_servers.Clear();
        }
    }
}

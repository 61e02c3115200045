using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>Connect-TcpEndpoint: opens a client connection whose incoming lines are queued.</summary>
    [Cmdlet(VerbsCommunications.Connect, "TcpEndpoint")]
    [OutputType(typeof(TcpConnection))]
    public sealed class ConnectTcpEndpointCommand : TcpCmdlet
    {
        internal static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

        [Parameter(Mandatory = true, Position = 0)]
        [Alias("ComputerName", "Host")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, Position = 1)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter]
        public TimeSpan Timeout { get; set; } = DefaultTimeout;

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        [Parameter]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        [Parameter]
        [ValidateRange(1, 1024 * 1024 * 1024)]
        public int MaxLineLength { get; set; } = ConnectionOptions.DefaultMaxLineLength;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int QueueCapacity { get; set; } = ConnectionOptions.DefaultQueueCapacity;

        [Parameter]
        public QueueFullMode QueueFullMode { get; set; } = QueueFullMode.DropOldest;

        protected override void EndProcessing()
        {
            var options = new ConnectionOptions
            {
                Name = Name,
                Encoding = Encoding,
                MaxLineLength = MaxLineLength,
                QueueCapacity = QueueCapacity,
                QueueFullMode = QueueFullMode,
            };

            var connection = Connect(this, HostName, Port, Timeout, options);
            TcpRegistry.Add(connection);
            WriteObject(connection);
        }

        /// <summary>Connects, or throws the terminating error the failure maps to.</summary>
        internal static TcpConnection Connect(TcpCmdlet cmdlet, string host, int port, TimeSpan timeout, ConnectionOptions options)
        {
            if (timeout <= TimeSpan.Zero)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.From(new ArgumentException("Timeout must be positive.", nameof(Timeout)), timeout));
            }

            cmdlet.WriteVerbose($"Connecting to {host}:{port} (timeout {timeout.TotalSeconds:0.###} s).");
            try
            {
                var connection = cmdlet.WaitFor(TcpConnection.ConnectAsync(host, port, options, timeout, cmdlet.StoppingToken));
                cmdlet.WriteVerbose($"{connection.Name} (Id {connection.Id}) connected: {connection.LocalEndPoint} -> {connection.RemoteEndPoint}.");
                return connection;
            }
            catch (TcpException e)
            {
                cmdlet.ThrowTerminatingError(TcpErrors.From(e, $"{host}:{port}"));
                return null;
            }
        }
    }
}

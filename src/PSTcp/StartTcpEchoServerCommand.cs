using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>Start-TcpEchoServer: listens and echoes every line back, queuing it for consumers.</summary>
    [Cmdlet(VerbsLifecycle.Start, "TcpEchoServer")]
    [OutputType(typeof(TcpServer))]
    public sealed class StartTcpEchoServerCommand : TcpCmdlet
    {
        [Parameter(Position = 0)]
        [ValidateRange(0, 65535)]
        public int Port { get; set; } = TcpServerOptions.DefaultPort;

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Address { get; set; } = "127.0.0.1";

        [Parameter]
        [ValidateNotNullOrEmpty]
        public string Name { get; set; }

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int MaxConnections { get; set; } = TcpServerOptions.DefaultMaxConnections;

        [Parameter]
        [ValidateRange(1, 1024 * 1024 * 1024)]
        public int MaxLineLength { get; set; } = ConnectionOptions.DefaultMaxLineLength;

        [Parameter]
        public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

        [Parameter]
        [ValidateRange(1, int.MaxValue)]
        public int QueueCapacity { get; set; } = ConnectionOptions.DefaultQueueCapacity;

        [Parameter]
        public QueueFullMode QueueFullMode { get; set; } = QueueFullMode.DropOldest;

        [Parameter]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        protected override void EndProcessing()
        {
            if (IdleTimeout < TimeSpan.Zero)
            {
                ThrowTcpError(new ArgumentException("IdleTimeout can't be negative.", nameof(IdleTimeout)), IdleTimeout);
            }

            var options = new TcpServerOptions
            {
                Address = Address,
                Port = Port,
                Name = Name,
                MaxConnections = MaxConnections,
                MaxLineLength = MaxLineLength,
                IdleTimeout = IdleTimeout,
                QueueCapacity = QueueCapacity,
                QueueFullMode = QueueFullMode,
                Encoding = Encoding,
            };

            TcpServer server;
            try
            {
                server = TcpServer.Start(options, EchoLineHandler.Instance);
            }
            catch (Exception e) when (e is TcpException || e is ArgumentException)
            {
                ThrowTcpError(e, $"{Address}:{Port}");
                return;
            }

            TcpRegistry.Add(server);
            WriteVerbose($"{server.Name} (Id {server.Id}) is listening on {server.LocalEndPoint}.");
            WriteObject(server);
        }
    }
}

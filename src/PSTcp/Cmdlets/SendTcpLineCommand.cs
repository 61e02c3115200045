using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Send-TcpLine: writes each line plus the terminator. Lines are encoded into one buffer
    /// and sent when it fills and at the end, so a million piped lines cost a few hundred sends.
    /// Lines come from -Line (or the pipeline) or from files (-Path/-LiteralPath); they go to a
    /// connection, or to -HostName/-Port (connect, send, close). The connection it opened for
    /// -HostName is closed on every path: the end, Ctrl+C, an upstream failure (Dispose) and
    /// Remove-Module (it is in the registry while it lives).
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "TcpLine", DefaultParameterSetName = ConnectionLines, HelpUri = HelpLinks.Base + "Send-TcpLine.md")]
    [OutputType(typeof(TcpConnection))]
    public sealed class SendTcpLineCommand : ClientTcpCmdlet, IDisposable
    {
        private const string UnixLines = "UnixSocket";
        private const string UnixPath = "UnixSocketPath";
        private const string UnixLiteralPath = "UnixSocketLiteralPath";

        /// <summary>Connect to the Unix domain socket at this path instead of a host and port.</summary>
        [Parameter(Mandatory = true, ParameterSetName = UnixLines)]
        [Parameter(Mandatory = true, ParameterSetName = UnixPath)]
        [Parameter(Mandatory = true, ParameterSetName = UnixLiteralPath)]
        [ValidateNotNullOrEmpty]
        public string UnixSocket { get; set; }

        /// <summary>Connect through this proxy: socks5://, socks4a://, socks4:// or http:// (CONNECT).</summary>
        [Parameter]
        [ValidateNotNull]
        public Uri Proxy { get; set; }

        /// <summary>The proxy's user name and password.</summary>
        [Parameter]
        [Credential]
        public PSCredential ProxyCredential { get; set; }

        private const string ConnectionLines = "Connection";
        private const string ConnectionPath = "ConnectionPath";
        private const string ConnectionLiteralPath = "ConnectionLiteralPath";
        private const string HostLines = "HostName";
        private const string HostPath = "HostNamePath";
        private const string HostLiteralPath = "HostNameLiteralPath";

        private LineBuffer _buffer;
        private OneShotConnection _oneShot;
        private SendProgress _progress;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConnectionLines)]
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConnectionPath)]
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ConnectionLiteralPath)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = HostLines)]
        [Parameter(Mandatory = true, ParameterSetName = HostPath)]
        [Parameter(Mandatory = true, ParameterSetName = HostLiteralPath)]
        [Alias("ComputerName")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = HostLines)]
        [Parameter(Mandatory = true, ParameterSetName = HostPath)]
        [Parameter(Mandatory = true, ParameterSetName = HostLiteralPath)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = HostLines)]
        [Parameter(ParameterSetName = HostPath)]
        [Parameter(ParameterSetName = HostLiteralPath)]
        [Parameter(ParameterSetName = UnixLines)]
        [Parameter(ParameterSetName = UnixPath)]
        [Parameter(ParameterSetName = UnixLiteralPath)]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = ConnectTcpEndpointCommand.DefaultTimeout;

        [Parameter(ParameterSetName = HostLines)]
        [Parameter(ParameterSetName = HostPath)]
        [Parameter(ParameterSetName = HostLiteralPath)]
        [Parameter(ParameterSetName = UnixLines)]
        [Parameter(ParameterSetName = UnixPath)]
        [Parameter(ParameterSetName = UnixLiteralPath)]
        [ValidateRange(0, int.MaxValue)]
        public int RetryCount { get; set; }

        [Parameter(ParameterSetName = HostLines)]
        [Parameter(ParameterSetName = HostPath)]
        [Parameter(ParameterSetName = HostLiteralPath)]
        [Parameter(ParameterSetName = UnixLines)]
        [Parameter(ParameterSetName = UnixPath)]
        [Parameter(ParameterSetName = UnixLiteralPath)]
        [TimeSpanTransformation]
        public TimeSpan RetryInterval { get; set; } = ConnectTcpEndpointCommand.DefaultRetryInterval;

        [Parameter(ParameterSetName = HostLines)]
        [Parameter(ParameterSetName = HostPath)]
        [Parameter(ParameterSetName = HostLiteralPath)]
        [Parameter(ParameterSetName = UnixLines)]
        [Parameter(ParameterSetName = UnixPath)]
        [Parameter(ParameterSetName = UnixLiteralPath)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ParameterSetName = ConnectionLines)]
        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ParameterSetName = HostLines)]
        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ParameterSetName = UnixLines)]
        [LineTransformation]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[] Line { get; set; }

        /// <summary>Send the lines of these files (wildcards allowed).</summary>
        [Parameter(Mandatory = true, ParameterSetName = ConnectionPath, ValueFromPipelineByPropertyName = true)]
        [Parameter(Mandatory = true, ParameterSetName = HostPath, ValueFromPipelineByPropertyName = true)]
        [Parameter(Mandatory = true, ParameterSetName = UnixPath, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[] Path { get; set; }

        /// <summary>Send the lines of these files, paths taken literally.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ConnectionLiteralPath, ValueFromPipelineByPropertyName = true)]
        [Parameter(Mandatory = true, ParameterSetName = HostLiteralPath, ValueFromPipelineByPropertyName = true)]
        [Parameter(Mandatory = true, ParameterSetName = UnixLiteralPath, ValueFromPipelineByPropertyName = true)]
        [Alias("PSPath", "LP")]
        [ValidateNotNullOrEmpty]
        public string[] LiteralPath { get; set; }

        [Parameter]
        [ValidateNotNull]
        [ArgumentCompleter(typeof(NewLineCompleter))]
        public string NewLine { get; set; } = "\n";

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        private bool ToHost => HostName != null || UnixSocket != null;

        protected override void BeginProcessing()
        {
            base.BeginProcessing();
            var client = Client;
            if (!ToHost) client.RefuseWith(this, "they apply to -HostName and -UnixSocket only: the connection is already made.");
            if (ToHost)
            {
                var options = new ConnectionOptions { Encoding = Encoding, QueueCapacity = 1, QueueFullMode = QueueFullMode.DropOldest };
                client.WithProxy(Proxy, ProxyCredential).Apply(this, options);
                if (UnixSocket != null) options.UnixSocketPath = ClientConnectionParameters.UnixPath(this, UnixSocket);
                _oneShot = new OneShotConnection(ConnectTcpEndpointCommand.Connect(this, HostName, Port, Timeout, options, RetryCount, RetryInterval));
            }

            _progress = new SendProgress(this);
        }

        protected override void ProcessRecord()
        {
            var connection = _oneShot?.Connection ?? Connection;
            if (_buffer == null || _buffer.Connection != connection)
            {
                Flush();
                _buffer?.Dispose();
                _buffer = new LineBuffer(connection, ToHost ? Encoding : connection.Encoding, NewLine);
            }

            if (Path != null || LiteralPath != null)
            {
                foreach (var file in ResolveFiles())
                {
                    SendFile(connection, file);
                }

                return;
            }

            if (connection.State != ConnectionState.Open)
            {
                foreach (var line in Line)
                {
                    WriteClosedError(connection, line);
                }

                return;
            }

            _progress.BeginItems(Line.Length);
            foreach (var line in Line)
            {
                Append(line);
                _progress.Advance(1, 0);
            }
        }

        protected override void EndProcessing()
        {
            Flush();
            _progress?.Complete();
            _oneShot?.Close(this);
            var sent = _oneShot?.Connection ?? Connection;
            if (PassThru && sent != null) WriteObject(sent);
        }

        protected override void StopProcessing()
        {
            base.StopProcessing();
            _oneShot?.Abort();
        }

        /// <summary>Also runs when the pipeline fails upstream: the -HostName connection must not outlive it.</summary>
        public void Dispose()
        {
            _buffer?.Dispose();
            _buffer = null;
            _oneShot?.Dispose();
        }

        private void Append(string line) => _buffer.Append(line ?? string.Empty, Flush);

        private void SendFile(TcpConnection connection, string file)
        {
            if (connection.State != ConnectionState.Open)
            {
                WriteClosedError(connection, file);
                return;
            }

            using (var reader = new StreamReader(file, ToHost ? Encoding : connection.Encoding, detectEncodingFromByteOrderMarks: true))
            {
                _progress.BeginFile(file, reader.BaseStream.Length);
                string line;
                while ((line = reader.ReadLine()) != null)
                {
                    Append(line);
                    _progress.Advance(1, reader.BaseStream.Position);
                    if (connection.State != ConnectionState.Open) break;
                }
            }
        }

        private IEnumerable<string> ResolveFiles()
        {
            var files = new List<string>();
            if (LiteralPath != null)
            {
                foreach (var path in LiteralPath)
                {
                    var resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
                    if (File.Exists(resolved)) files.Add(resolved);
                    else WritePathError(path);
                }

                return files;
            }

            foreach (var path in Path)
            {
                try
                {
                    var resolved = SessionState.Path.GetResolvedProviderPathFromPSPath(path, out var provider);
                    if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
                    {
                        WriteError(TcpErrors.Record(new ArgumentException($"'{path}' is not a file system path."),
                            TcpErrors.NotAFileSystemPath, ErrorCategory.InvalidArgument, path));
                        continue;
                    }

                    files.AddRange(resolved);
                }
                catch (ItemNotFoundException)
                {
                    WritePathError(path);
                }
            }

            return files;
        }

        private void WritePathError(string path) =>
            WriteError(TcpErrors.Record(new FileNotFoundException($"Cannot find the file '{path}'.", path),
                TcpErrors.PathNotFound, ErrorCategory.ObjectNotFound, path));

        private void WriteClosedError(TcpConnection connection, object target) =>
            WriteTcpError(connection.NotOpenError(), target);

        /// <summary>Sends what the buffer holds; false (and an error written) when the send failed.</summary>
        private bool Flush() => _buffer == null || _buffer.Send(this, "line");
    }
}

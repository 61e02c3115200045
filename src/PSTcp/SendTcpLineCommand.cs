using System;
using System.Management.Automation;
using System.Text;

namespace PSTcp.Commands
{
    /// <summary>
    /// Send-TcpLine: writes each line plus the terminator. Lines are encoded into one buffer
    /// and sent when it fills and at the end, so a million piped lines cost a few hundred sends.
    /// </summary>
    [Cmdlet(VerbsCommunications.Send, "TcpLine", DefaultParameterSetName = ToConnection)]
    [OutputType(typeof(TcpConnection))]
    public sealed class SendTcpLineCommand : TcpCmdlet
    {
        private const string ToConnection = "Connection";
        private const string ToHost = "HostName";

        private LineBuffer _buffer;
        private TcpConnection _target;
        private bool _ownsConnection;

        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ToConnection)]
        [ConnectionTransformation]
        [ArgumentCompleter(typeof(ConnectionCompleter))]
        public TcpConnection Connection { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [Alias("ComputerName")]
        [ValidateNotNullOrEmpty]
        public string HostName { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = ToHost)]
        [ValidateRange(1, 65535)]
        public int Port { get; set; }

        [Parameter(ParameterSetName = ToHost)]
        public TimeSpan Timeout { get; set; } = ConnectTcpEndpointCommand.DefaultTimeout;

        [Parameter(ParameterSetName = ToHost)]
        [ValidateRange(0, int.MaxValue)]
        public int RetryCount { get; set; }

        [Parameter(ParameterSetName = ToHost)]
        public TimeSpan RetryInterval { get; set; } = ConnectTcpEndpointCommand.DefaultRetryInterval;

        [Parameter(ParameterSetName = ToHost)]
        [EncodingTransformation]
        [ArgumentCompleter(typeof(EncodingCompleter))]
        public Encoding Encoding { get; set; } = ConnectionOptions.DefaultEncoding;

        [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
        [AllowEmptyString]
        [AllowEmptyCollection]
        public string[] Line { get; set; }

        [Parameter]
        [ValidateNotNull]
        public string NewLine { get; set; } = "\n";

        [Parameter]
        public SwitchParameter PassThru { get; set; }

        protected override void BeginProcessing()
        {
            if (ParameterSetName == ToHost)
            {
                var options = new ConnectionOptions { Encoding = Encoding, QueueCapacity = 1, QueueFullMode = QueueFullMode.DropOldest };
                _target = ConnectTcpEndpointCommand.Connect(this, HostName, Port, Timeout, options, RetryCount, RetryInterval);
                _ownsConnection = true;
            }
        }

        protected override void ProcessRecord()
        {
            var connection = _target ?? Connection;
            if (_buffer == null || _buffer.Connection != connection)
            {
                Flush();
                _target = _target ?? connection;
                _buffer = new LineBuffer(connection, EncodingOf(connection), NewLine);
            }

            if (connection.State != ConnectionState.Open)
            {
                foreach (var line in Line)
                {
                    WriteTcpError(new TcpException(TcpErrorKind.ConnectionClosed, $"Connection {connection.Id} to {connection.RemoteEndPoint} is closed; the line was not sent."), line);
                }

                return;
            }

            foreach (var line in Line)
            {
                if (!_buffer.Append(line ?? string.Empty))
                {
                    Flush();
                    _buffer.Append(line ?? string.Empty);
                }
            }
        }

        protected override void EndProcessing()
        {
            Flush();
            if (_ownsConnection && _target != null)
            {
                Wait(_target.CloseAsync(TimeSpan.FromSeconds(2)));
            }

            if (PassThru && _target != null)
            {
                WriteObject(_target);
            }
        }

        private Encoding EncodingOf(TcpConnection connection) =>
            ParameterSetName == ToHost ? Encoding : connection.Encoding;

        private void Flush()
        {
            if (_buffer == null || _buffer.IsEmpty) return;
            var (data, lines) = _buffer.Take();
            try
            {
                Wait(_buffer.Connection.SendAsync(data, Cancellation).AsTask());
                _buffer.Connection.CountMessagesSent(lines);
            }
            catch (TcpException e)
            {
                WriteTcpError(new TcpException(e.Kind, $"{lines} line(s) could not be sent: {e.Message}", e), _buffer.Connection);
            }
            finally
            {
                _buffer.Reset();
            }
        }
    }
}

using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp.Commands
{
    /// <summary>
    /// Test-TcpEndpoint: tries every host × port, up to -ThrottleLimit attempts at a time, and writes
    /// one result per attempt in input order (host by host, each host's ports in the order given), so
    /// -Quiet's bools line up with the input. Attempts run ahead of the output; only the pipeline
    /// thread writes.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Test, "TcpEndpoint", DefaultParameterSetName = ToHost, HelpUri = HelpLinks.Base + "Test-TcpEndpoint.md")]
    [OutputType(typeof(TcpEndpointStatus), typeof(bool))]
    public sealed class TestTcpEndpointCommand : TcpCmdlet
    {
        public const int DefaultThrottleLimit = 64;

        private const string ToHost = "HostName";
        private const string ToUnixSocket = "UnixSocket";

        private System.Net.NetworkCredential _proxyLogin;
        private readonly Queue<Task<TcpEndpointStatus>> _pending = new Queue<Task<TcpEndpointStatus>>();
        private SemaphoreSlim _throttle;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = ToHost)]
        [Alias("ComputerName", "Host")]
        [ValidateNotNullOrEmpty]
        public string[] HostName { get; set; }

        /// <summary>The ports to try on each host that names none of its own (host:port, [v6]:port, tcp://host:port).</summary>
        [Parameter(Position = 1, ParameterSetName = ToHost)]
        [ValidateNotNullOrEmpty]
        [ValidateRange(1, 65535)]
        public int[] Port { get; set; }

        /// <summary>Try the Unix domain sockets at these paths instead of hosts and ports.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ToUnixSocket)]
        [ValidateNotNullOrEmpty]
        public string[] UnixSocket { get; set; }

        /// <summary>Try through this proxy: socks5://, socks4a://, socks4:// or http:// (CONNECT); it resolves the names.</summary>
        [Parameter(ParameterSetName = ToHost)]
        [ValidateNotNull]
        public Uri Proxy { get; set; }

        /// <summary>The proxy's user name and password (else those in -Proxy's URI).</summary>
        [Parameter(ParameterSetName = ToHost)]
        [Credential]
        public PSCredential ProxyCredential { get; set; }

        [Parameter]
        [TimeSpanTransformation]
        public TimeSpan Timeout { get; set; } = EndpointProbe.DefaultTimeout;

        [Parameter]
        [ValidateRange(1, 10000)]
        public int ThrottleLimit { get; set; } = DefaultThrottleLimit;

        [Parameter]
        public SwitchParameter Quiet { get; set; }

        protected override void BeginProcessing()
        {
            base.BeginProcessing();
            if (Proxy != null)
            {
                try
                {
                    EndpointProbe.ValidateProxy(Proxy);
                }
                catch (ArgumentException e)
                {
                    ThrowTerminatingError(TcpErrors.From(e, Proxy));
                }

                _proxyLogin = ProxyCredential?.GetNetworkCredential();
            }
            else if (ProxyCredential != null)
            {
                ThrowTerminatingError(TcpErrors.InvalidArgument("-ProxyCredential goes with -Proxy.", ProxyCredential));
            }

            _throttle = new SemaphoreSlim(ThrottleLimit);
        }

        protected override void ProcessRecord()
        {
            if (UnixSocket != null)
            {
                foreach (var path in UnixSocket)
                {
                    _pending.Enqueue(ProbeUnixAsync(ClientConnectionParameters.UnixPath(this, path)));
                }
            }

            foreach (var text in HostName ?? Array.Empty<string>())
            {
                if (!EndpointProbe.TryParseTarget(text, out var host, out var ownPort, out var error))
                {
                    WriteError(TcpErrors.InvalidArgument(error, text));
                    continue;
                }

                // A host that names its port is tried on that port; the others on every -Port.
                if (ownPort != 0)
                {
                    _pending.Enqueue(ProbeAsync(host, ownPort));
                }
                else if (Port == null || Port.Length == 0)
                {
                    WriteError(TcpErrors.InvalidArgument($"'{text}' names no port: give -Port, or write it as host:port or tcp://host:port.", text));
                }
                else
                {
                    foreach (var port in Port)
                    {
                        _pending.Enqueue(ProbeAsync(host, port));
                    }
                }
            }

            // Write what is already done without waiting, so a long pipeline streams.
            while (_pending.Count > 0 && _pending.Peek().IsCompleted)
            {
                Emit(_pending.Dequeue());
            }
        }

        protected override void EndProcessing()
        {
            while (_pending.Count > 0)
            {
                Emit(_pending.Dequeue());
            }
        }

        private async Task<TcpEndpointStatus> ProbeAsync(string host, int port)
        {
            // The timeout starts when the attempt does, not while it waits for a throttle slot.
            await _throttle.WaitAsync(Cancellation).ConfigureAwait(false);
            try
            {
                return Proxy != null
                    ? await EndpointProbe.ProbeThroughProxyAsync(host, port, Proxy, _proxyLogin, Timeout, Cancellation).ConfigureAwait(false)
                    : await EndpointProbe.ProbeAsync(host, port, Timeout, Cancellation).ConfigureAwait(false);
            }
            finally
            {
                _throttle.Release();
            }
        }

        private async Task<TcpEndpointStatus> ProbeUnixAsync(string path)
        {
            await _throttle.WaitAsync(Cancellation).ConfigureAwait(false);
            try
            {
                return await EndpointProbe.ProbeUnixSocketAsync(path, Timeout, Cancellation).ConfigureAwait(false);
            }
            finally
            {
                _throttle.Release();
            }
        }

        private void Emit(Task<TcpEndpointStatus> attempt)
        {
            var result = Wait(attempt);
            var target = result.Port == 0 ? "unix:" + result.HostName
                : $"{result.HostName}:{result.Port} ({(result.Proxy != null ? "through " + result.Proxy : result.Address?.ToString())})";
            WriteVerbose($"{target} {result.Status} after {result.Latency.TotalMilliseconds:0.#} ms" +
                (result.Error == null ? "." : $": {result.Error}"));
            if (Quiet)
            {
                WriteObject(result.Open);
            }
            else
            {
                WriteObject(result);
            }
        }
    }
}

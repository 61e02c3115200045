using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>TLS over the socket (the OS's choice of TLS 1.2 or 1.3).</summary>
    internal sealed class TlsTransport : Transport
    {
        private readonly SslStream _stream;
        private Func<Task> _handshake;

        private TlsTransport(Socket socket, RemoteCertificateValidationCallback validate)
            : base(socket)
        {
            _stream = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false, validate);
        }

        public override bool CanWaitForData => false;

        /// <summary>Server side: the handshake runs when the connection starts, within <paramref name="timeout"/>.</summary>
        public static TlsTransport ForServer(Socket socket, X509Certificate2 certificate, TimeSpan timeout)
        {
            var transport = new TlsTransport(socket, null);
            transport._handshake = () => transport.AuthenticateAsServerAsync(certificate, timeout);
            return transport;
        }

        /// <summary>Client side: validates the server's certificate unless told to skip it.</summary>
        public static TlsTransport ForClient(Socket socket, string serverName, bool skipCertificateCheck)
        {
            SslPolicyErrors? policyErrors = null;
            RemoteCertificateValidationCallback validate = (sender, certificate, chain, errors) =>
            {
                policyErrors = errors;
                return skipCertificateCheck || errors == SslPolicyErrors.None;
            };

            var transport = new TlsTransport(socket, validate);
            transport._handshake = () => transport.AuthenticateAsClientAsync(serverName, () => policyErrors);
            return transport;
        }

        public override Task HandshakeAsync() => _handshake();

        private async Task AuthenticateAsServerAsync(X509Certificate2 certificate, TimeSpan timeout)
        {
            try
            {
                var handshake = _stream.AuthenticateAsServerAsync(certificate, false, SslProtocols.None, false);
                if (await Task.WhenAny(handshake, Task.Delay(timeout)).ConfigureAwait(false) != handshake)
                {
                    // A silent client: closing the socket ends the handshake.
                    Dispose();
                    Observe(handshake);
                    throw new TcpException(TcpErrorKind.TlsHandshakeFailed, $"The TLS handshake did not finish within {timeout.TotalSeconds:0.###} s.");
                }

                await handshake.ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException || e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                throw new TcpException(TcpErrorKind.TlsHandshakeFailed, "The TLS handshake failed: " + e.Message, e);
            }
        }

        private async Task AuthenticateAsClientAsync(string serverName, Func<SslPolicyErrors?> policyErrors)
        {
            try
            {
                await _stream.AuthenticateAsClientAsync(serverName, null, SslProtocols.None, false).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException || e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                var errors = policyErrors();
                if (errors.HasValue && errors.Value != SslPolicyErrors.None)
                {
                    throw new TcpException(TcpErrorKind.CertificateInvalid,
                        $"The server's certificate for '{serverName}' is not valid ({errors.Value}). Use -SkipCertificateCheck only for test certificates.", e);
                }

                throw new TcpException(TcpErrorKind.TlsHandshakeFailed, $"The TLS handshake with '{serverName}' failed: {e.Message}", e);
            }
        }

        private static void Observe(Task task) => task.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);

        public override async ValueTask<int> ReceiveAsync(ArraySegment<byte> buffer)
        {
            try
            {
                return await _stream.ReadAsync(buffer.Array, buffer.Offset, buffer.Count).ConfigureAwait(false);
            }
            catch (IOException e) when (e.InnerException is SocketException se)
            {
                throw se;
            }
        }

        public override async ValueTask SendAsync(ArraySegment<byte> buffer)
        {
            try
            {
                await _stream.WriteAsync(buffer.Array, buffer.Offset, buffer.Count).ConfigureAwait(false);
            }
            catch (IOException e) when (e.InnerException is SocketException se)
            {
                throw se;
            }
        }

        public override async ValueTask SendAsync(IList<ArraySegment<byte>> buffers)
        {
            foreach (var buffer in buffers)
            {
                await SendAsync(buffer).ConfigureAwait(false);
            }
        }

        public override void Dispose()
        {
            base.Dispose();
            _stream.Dispose();
        }
    }
}

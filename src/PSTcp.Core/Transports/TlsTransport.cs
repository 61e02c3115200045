using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// TLS over the socket. Client certificates, trusted CA files, pins, ALPN and TLS versions come
    /// from the connection's options; the runtime's option-based handshake (reached by reflection,
    /// since netstandard2.0 lacks it) carries ALPN and SNI selection.
    /// </summary>
    internal sealed class TlsTransport : Transport
    {
        private readonly SslStream _stream;

        // TLS 1.3: a server's refusal (an alert) arrives after the handshake. The receive loop
        // reads it and learns its cause; a send racing with it only sees the broken session, so
        // a failed send takes the reader's description when it comes soon.
        private readonly TaskCompletionSource<TcpException> _sessionEnded =
            new TaskCompletionSource<TcpException>(TaskCreationOptions.RunContinuationsAsynchronously);
        private Func<Task> _handshake;
        private string _rejection;
        private bool _rejectionIsMissing;

        private TlsTransport(Socket socket, RemoteCertificateValidationCallback validate, LocalCertificateSelectionCallback select)
            : base(socket)
        {
            _stream = new SslStream(new NetworkStream(socket, ownsSocket: false), false, validate, select);
        }

        public override bool CanWaitForData => false;

        /// <summary>What the handshake agreed on; null until it finished.</summary>
        public TlsInfo Info { get; private set; }

        /// <summary>Server side: the handshake runs when the connection starts, within the options' handshake timeout.</summary>
        public static TlsTransport ForServer(Socket socket, TcpServerOptions options)
        {
            TlsTransport transport = null;
            var mode = options.ClientCertificateMode;
            RemoteCertificateValidationCallback validate = (sender, certificate, chain, errors) =>
            {
                if (mode == ClientCertificateMode.None) return true;
                if (certificate == null)
                {
                    if (mode == ClientCertificateMode.Allow) return true;
                    transport._rejection = "the client sent no certificate, and this server requires one (-ClientCertificateMode Require)";
                    transport._rejectionIsMissing = true;
                    return false;
                }

                // A client certificate carries no name to check: only its chain.
                transport._rejection = CertificateChecks.CheckChain(Certificates.AsCertificate2(certificate), chain,
                    errors & ~SslPolicyErrors.RemoteCertificateNameMismatch, options.TrustedCertificates, "client");
                return transport._rejection == null;
            };

            transport = new TlsTransport(socket, validate, null);
            transport._handshake = () => transport.AuthenticateAsServerAsync(options);
            return transport;
        }

        /// <summary>Client side: validates the server's certificate unless told to skip it.</summary>
        public static TlsTransport ForClient(Socket socket, string serverName, ConnectionOptions options)
        {
            TlsTransport transport = null;
            RemoteCertificateValidationCallback validate = (sender, certificate, chain, errors) =>
            {
                if (options.SkipCertificateCheck) return true;
                transport._rejection = CertificateChecks.CheckServer(certificate, chain, errors, options, serverName);
                return transport._rejection == null;
            };

            // Our certificate whenever the server asks, whatever issuers it names: the server decides.
            var clientCertificate = options.ClientCertificate;
            LocalCertificateSelectionCallback select = clientCertificate == null ? (LocalCertificateSelectionCallback)null
                : (sender, host, local, remote, issuers) => clientCertificate;
            transport = new TlsTransport(socket, validate, select);
            transport._handshake = () => transport.AuthenticateAsClientAsync(serverName, options);
            return transport;
        }

        public override Task HandshakeAsync() => _handshake();

        private async Task AuthenticateAsServerAsync(TcpServerOptions options)
        {
            var timeout = options.TlsHandshakeTimeout;
            try
            {
                var handshake = TlsRuntime.AuthenticateAsServerAsync(_stream, options);
                if (await Task.WhenAny(handshake, Task.Delay(timeout)).ConfigureAwait(false) != handshake)
                {
                    // A silent client: closing the socket ends the handshake.
                    Dispose();
                    Observe(handshake);
                    throw new TcpException(TcpErrorKind.TlsHandshakeFailed, $"The client timed out during the TLS handshake (it did not finish within {timeout.TotalSeconds:0.###} s).");
                }

                await handshake.ConfigureAwait(false);
                Info = TlsInfo.From(_stream, null);
            }
            catch (Exception e) when (e is AuthenticationException || e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                var reason = _rejection != null ? _rejection + "." : TlsErrors.Describe(e, server: true, options.SslProtocols);
                // No certificate at all is a failed handshake; a bad one is an invalid certificate.
                throw new TcpException(_rejection != null && !_rejectionIsMissing ? TcpErrorKind.CertificateInvalid : TcpErrorKind.TlsHandshakeFailed,
                    "The TLS handshake failed: " + reason, e);
            }
        }

        private async Task AuthenticateAsClientAsync(string serverName, ConnectionOptions options)
        {
            try
            {
                await TlsRuntime.AuthenticateAsClientAsync(_stream, serverName, options).ConfigureAwait(false);
                Info = TlsInfo.From(_stream, serverName);
            }
            catch (Exception e) when (e is AuthenticationException || e is IOException || e is SocketException || e is ObjectDisposedException)
            {
                if (_rejection != null)
                {
                    throw new TcpException(TcpErrorKind.CertificateInvalid,
                        $"The server's certificate for '{serverName}' is not valid: {_rejection}. " +
                        "Trust its issuer with -TrustedCertificatePath, pin it with -CertificateThumbprint, or use -SkipCertificateCheck only for test certificates.", e);
                }

                throw new TcpException(TcpErrorKind.TlsHandshakeFailed,
                    $"The TLS handshake with '{serverName}' failed: {TlsErrors.Describe(e, server: false, options.SslProtocols)}", e);
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
            catch (Exception e) when (IsTlsFailure(e))
            {
                // TLS 1.3: a server that refuses our certificate says so after the handshake, in an alert.
                var failure = new TcpException(TcpErrorKind.TlsHandshakeFailed, "The peer ended the TLS session: " + TlsErrors.Describe(e, server: Info?.ServerName == null, SslProtocols.None), e);
                _sessionEnded.TrySetResult(failure);
                throw failure;
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
            catch (Exception e) when (IsTlsFailure(e))
            {
                // The reader, which got the alert itself, knows its cause: wait a moment for it.
                var read = _sessionEnded.Task;
                if (await Task.WhenAny(read, Task.Delay(500)).ConfigureAwait(false) == read) throw new TcpException(TcpErrorKind.TlsHandshakeFailed, read.Result.Message, e);
                throw new TcpException(TcpErrorKind.TlsHandshakeFailed, "The peer ended the TLS session: " + TlsErrors.Describe(e, server: Info?.ServerName == null, SslProtocols.None), e);
            }
        }

        /// <summary>A TLS-level failure of an established session (an alert), not a closed or reset socket.</summary>
        private static bool IsTlsFailure(Exception e) =>
            (e is IOException || e is AuthenticationException) && !(e.InnerException is SocketException) && TlsErrors.HasTlsCause(e);

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

    /// <summary>What a TLS connection agreed on.</summary>
    public sealed class TlsInfo
    {
        internal TlsInfo(SslProtocols protocol, string cipherSuite, string applicationProtocol, X509Certificate2 remoteCertificate, string serverName)
        {
            Protocol = protocol;
            CipherSuite = cipherSuite;
            ApplicationProtocol = applicationProtocol;
            RemoteCertificate = remoteCertificate;
            ServerName = serverName;
        }

        /// <summary>The TLS version (Tls12, Tls13).</summary>
        public SslProtocols Protocol { get; }

        /// <summary>The cipher suite's IANA name (TLS_AES_256_GCM_SHA384).</summary>
        public string CipherSuite { get; }

        /// <summary>The ALPN protocol agreed on; null when none was.</summary>
        public string ApplicationProtocol { get; }

        /// <summary>The peer's certificate: the server's, or a client's when it sent one.</summary>
        public X509Certificate2 RemoteCertificate { get; }

        /// <summary>Client side: the name asked for (SNI) and checked against the certificate.</summary>
        public string ServerName { get; }

        internal static TlsInfo From(SslStream stream, string serverName) =>
            new TlsInfo(stream.SslProtocol, TlsRuntime.CipherSuite(stream), TlsRuntime.NegotiatedApplicationProtocol(stream),
                stream.RemoteCertificate == null ? null : Certificates.AsCertificate2(stream.RemoteCertificate), serverName);

        public override string ToString() =>
            $"{Protocol} {CipherSuite}" + (ApplicationProtocol != null ? $" {ApplicationProtocol}" : string.Empty) +
            (RemoteCertificate != null ? $" {RemoteCertificate.Subject}" : string.Empty);
    }
}

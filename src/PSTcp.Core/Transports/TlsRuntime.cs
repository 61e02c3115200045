using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Net.Security;
using System.Reflection;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace PSTcp
{
    /// <summary>
    /// The runtime's TLS features that netstandard2.0 doesn't name (ALPN, SNI certificate selection,
    /// the negotiated cipher suite), reached by reflection. They exist on .NET Core 2.1 and later,
    /// where PowerShell 7 runs; on .NET Framework the classic handshake is used and ALPN is refused.
    /// </summary>
    internal static class TlsRuntime
    {
        private static readonly Assembly s_security = typeof(SslStream).Assembly;
        private static readonly Type s_clientOptions = s_security.GetType("System.Net.Security.SslClientAuthenticationOptions");
        private static readonly Type s_serverOptions = s_security.GetType("System.Net.Security.SslServerAuthenticationOptions");
        private static readonly Type s_protocol = s_security.GetType("System.Net.Security.SslApplicationProtocol");
        private static readonly Type s_selection = s_security.GetType("System.Net.Security.ServerCertificateSelectionCallback");

        private static readonly MethodInfo s_clientAuth = s_clientOptions == null ? null
            : typeof(SslStream).GetMethod("AuthenticateAsClientAsync", new[] { s_clientOptions, typeof(CancellationToken) });

        private static readonly MethodInfo s_serverAuth = s_serverOptions == null ? null
            : typeof(SslStream).GetMethod("AuthenticateAsServerAsync", new[] { s_serverOptions, typeof(CancellationToken) });

        private static readonly PropertyInfo s_negotiatedProtocol = typeof(SslStream).GetProperty("NegotiatedApplicationProtocol");
        private static readonly PropertyInfo s_cipherSuite = typeof(SslStream).GetProperty("NegotiatedCipherSuite");

        /// <summary>Whether ALPN (and SNI certificate selection) can be used here.</summary>
        public static bool SupportsAlpn => s_clientAuth != null && s_serverAuth != null && s_protocol != null;

        public static Task AuthenticateAsClientAsync(SslStream stream, string serverName, ConnectionOptions options)
        {
            var certificates = options.ClientCertificate == null ? null : new X509CertificateCollection { options.ClientCertificate };
            if (s_clientAuth == null)
            {
                RequireNoAlpn(options.ApplicationProtocols);
                return stream.AuthenticateAsClientAsync(serverName, certificates, options.SslProtocols, false);
            }

            var settings = Activator.CreateInstance(s_clientOptions);
            Set(settings, "TargetHost", serverName);
            if (certificates != null) Set(settings, "ClientCertificates", certificates);
            Set(settings, "EnabledSslProtocols", options.SslProtocols);
            Set(settings, "CertificateRevocationCheckMode", X509RevocationMode.NoCheck);
            SetProtocols(settings, options.ApplicationProtocols);
            return Invoke(s_clientAuth, stream, settings);
        }

        public static Task AuthenticateAsServerAsync(SslStream stream, TcpServerOptions options)
        {
            bool askForCertificate = options.ClientCertificateMode != ClientCertificateMode.None;
            var byName = options.CertificatesByServerName;
            if (s_serverAuth == null)
            {
                RequireNoAlpn(options.ApplicationProtocols);
                if (byName != null && byName.Count > 0) throw new PlatformNotSupportedException("A certificate per server name (SNI) needs PowerShell 7.");
                return stream.AuthenticateAsServerAsync(options.Certificate, askForCertificate, options.SslProtocols, false);
            }

            var settings = Activator.CreateInstance(s_serverOptions);
            Set(settings, "ClientCertificateRequired", askForCertificate);
            Set(settings, "EnabledSslProtocols", options.SslProtocols);
            Set(settings, "CertificateRevocationCheckMode", X509RevocationMode.NoCheck);
            SetProtocols(settings, options.ApplicationProtocols);
            if (byName != null && byName.Count > 0 && s_selection != null)
            {
                Func<object, string, X509Certificate> select = (sender, name) => Certificates.ForServerName(byName, name) ?? options.Certificate;
                Set(settings, "ServerCertificateSelectionCallback", Delegate.CreateDelegate(s_selection, select.Target, select.Method));
            }
            else
            {
                Set(settings, "ServerCertificate", options.Certificate);
            }

            return Invoke(s_serverAuth, stream, settings);
        }

        /// <summary>The ALPN protocol agreed on, or null.</summary>
        public static string NegotiatedApplicationProtocol(SslStream stream)
        {
            if (s_negotiatedProtocol == null) return null;
            var value = s_negotiatedProtocol.GetValue(stream);
            var bytes = value?.GetType().GetProperty("Protocol")?.GetValue(value);
            if (bytes == null) return null;
            // ReadOnlyMemory<byte>: its ToArray.
            var array = bytes.GetType().GetMethod("ToArray", Type.EmptyTypes)?.Invoke(bytes, null) as byte[];
            return array == null || array.Length == 0 ? null : System.Text.Encoding.ASCII.GetString(array);
        }

        /// <summary>The cipher suite's IANA name where the runtime knows it, else the algorithms.</summary>
        public static string CipherSuite(SslStream stream)
        {
            try
            {
                var suite = s_cipherSuite?.GetValue(stream);
                if (suite != null) return suite.ToString();
            }
            catch (TargetInvocationException)
            {
                // Not available on this platform: fall back below.
            }

            return $"{stream.CipherAlgorithm} {stream.HashAlgorithm}";
        }

        private static Task Invoke(MethodInfo method, SslStream stream, object settings)
        {
            try
            {
                return (Task)method.Invoke(stream, new[] { settings, CancellationToken.None });
            }
            catch (TargetInvocationException e) when (e.InnerException != null)
            {
                return Task.FromException(e.InnerException);
            }
        }

        private static void RequireNoAlpn(IReadOnlyList<string> protocols)
        {
            if (protocols != null && protocols.Count > 0)
            {
                throw new PlatformNotSupportedException("ALPN (-ApplicationProtocol) needs PowerShell 7 (.NET Core 2.1 or later).");
            }
        }

        private static void SetProtocols(object settings, IReadOnlyList<string> protocols)
        {
            if (protocols == null || protocols.Count == 0) return;
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(s_protocol));
            foreach (var protocol in protocols)
            {
                list.Add(Activator.CreateInstance(s_protocol, protocol));
            }

            Set(settings, "ApplicationProtocols", list);
        }

        private static void Set(object target, string property, object value) =>
            target.GetType().GetProperty(property).SetValue(target, value);
    }
}

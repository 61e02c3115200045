using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace PSTcp
{
    /// <summary>Loading certificates from PFX and PEM files, and the fingerprints pins compare.</summary>
    public static class Certificates
    {
        private static readonly MethodInfo s_createFromPemFile =
            typeof(X509Certificate2).GetMethod("CreateFromPemFile", BindingFlags.Public | BindingFlags.Static, null, new[] { typeof(string), typeof(string) }, null);

        /// <summary>
        /// A certificate with its private key from a PFX (PKCS#12) file, or from a PEM file holding the
        /// certificate and its key (or the key in <paramref name="keyPath"/>).
        /// </summary>
        public static X509Certificate2 LoadWithKey(string path, string keyPath, System.Security.SecureString password)
        {
            if (!IsPem(path))
            {
                if (keyPath != null) throw new ArgumentException("A separate key file goes with a PEM certificate, not a PFX file.", nameof(keyPath));
                return password == null ? new X509Certificate2(path) : new X509Certificate2(path, password);
            }

            if (s_createFromPemFile == null)
            {
                throw new PlatformNotSupportedException("PEM certificates need PowerShell 7 (.NET 5 or later); use a PFX file here.");
            }

            if (password != null) throw new ArgumentException("Encrypted PEM keys are not supported: use an unencrypted key file or a PFX file with -CertificatePassword.", nameof(password));
            X509Certificate2 certificate;
            try
            {
                certificate = (X509Certificate2)s_createFromPemFile.Invoke(null, new object[] { path, keyPath });
            }
            catch (TargetInvocationException e) when (e.InnerException != null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
                throw;
            }

            if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows))
            {
                // Windows' TLS can't use an ephemeral key: give it a PFX-backed one.
                using (certificate)
                {
                    return new X509Certificate2(certificate.Export(X509ContentType.Pkcs12));
                }
            }

            return certificate;
        }

        /// <summary>Every certificate of a PEM bundle (or of a DER or PFX file).</summary>
        public static X509Certificate2Collection LoadBundle(string path)
        {
            var collection = new X509Certificate2Collection();
            if (IsPem(path))
            {
                var text = File.ReadAllText(path);
                const string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
                for (int at = text.IndexOf(begin, StringComparison.Ordinal); at >= 0; at = text.IndexOf(begin, at, StringComparison.Ordinal))
                {
                    int stop = text.IndexOf(end, at, StringComparison.Ordinal);
                    if (stop < 0) break;
                    var body = text.Substring(at + begin.Length, stop - at - begin.Length);
                    collection.Add(new X509Certificate2(Convert.FromBase64String(body)));
                    at = stop + end.Length;
                }
            }
            else
            {
                collection.Import(path);
            }

            if (collection.Count == 0) throw new CryptographicException($"'{path}' holds no certificate.");
            return collection;
        }

        private static bool IsPem(string path)
        {
            using (var reader = new StreamReader(path, Encoding.ASCII))
            {
                var start = new char[4096];
                int read = reader.ReadBlock(start, 0, start.Length);
                return new string(start, 0, read).Contains("-----BEGIN ");
            }
        }

        /// <summary>The certificate for an SNI name: exact, then a "*." wildcard one label deep.</summary>
        internal static X509Certificate2 ForServerName(IDictionary<string, X509Certificate2> byName, string name)
        {
            if (string.IsNullOrEmpty(name)) return null;
            foreach (var pair in byName)
            {
                if (string.Equals(pair.Key, name, StringComparison.OrdinalIgnoreCase)) return pair.Value;
            }

            int dot = name.IndexOf('.');
            if (dot <= 0) return null;
            var wildcard = "*" + name.Substring(dot);
            foreach (var pair in byName)
            {
                if (string.Equals(pair.Key, wildcard, StringComparison.OrdinalIgnoreCase)) return pair.Value;
            }

            return null;
        }

        internal static X509Certificate2 AsCertificate2(X509Certificate certificate) =>
            certificate as X509Certificate2 ?? new X509Certificate2(certificate);

        /// <summary>The SHA-256 of the certificate's SubjectPublicKeyInfo, base64: what "sha256//…" pins name (as curl's --pinnedpubkey).</summary>
        public static string PublicKeyPin(X509Certificate2 certificate)
        {
            var spki = SubjectPublicKeyInfo(certificate.RawData);
            using (var sha = SHA256.Create())
            {
                return "sha256//" + Convert.ToBase64String(sha.ComputeHash(spki));
            }
        }

        /// <summary>The certificate's SHA-256 thumbprint in upper-case hex.</summary>
        public static string Sha256Thumbprint(X509Certificate2 certificate)
        {
            using (var sha = SHA256.Create())
            {
                return BitConverter.ToString(sha.ComputeHash(certificate.RawData)).Replace("-", string.Empty);
            }
        }

        /// <summary>Whether a pin (SHA-1 or SHA-256 thumbprint in hex, colons and spaces ignored, or "sha256//BASE64") names this certificate.</summary>
        public static bool MatchesPin(X509Certificate2 certificate, string pin)
        {
            if (string.IsNullOrWhiteSpace(pin)) return false;
            pin = pin.Trim();
            if (pin.StartsWith("sha256//", StringComparison.OrdinalIgnoreCase))
            {
                return string.Equals(PublicKeyPin(certificate).Substring(8), pin.Substring(8), StringComparison.Ordinal);
            }

            var hex = new string(pin.Where(c => c != ':' && c != ' ' && c != '-').ToArray());
            return string.Equals(hex, certificate.Thumbprint, StringComparison.OrdinalIgnoreCase)
                || string.Equals(hex, Sha256Thumbprint(certificate), StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>Certificate → TBSCertificate → its seventh element (after an optional [0] version): the SubjectPublicKeyInfo, whole.</summary>
        private static byte[] SubjectPublicKeyInfo(byte[] der)
        {
            int at = 0;
            ReadHeader(der, ref at, out _);           // Certificate SEQUENCE: step inside
            ReadHeader(der, ref at, out _);           // TBSCertificate SEQUENCE: step inside
            if (der[at] == 0xA0) Skip(der, ref at);   // [0] version
            for (int i = 0; i < 5; i++) Skip(der, ref at); // serial, signature, issuer, validity, subject
            int start = at;
            Skip(der, ref at);
            var spki = new byte[at - start];
            Array.Copy(der, start, spki, 0, spki.Length);
            return spki;
        }

        private static void ReadHeader(byte[] der, ref int at, out int length)
        {
            at++; // tag
            int first = der[at++];
            if (first < 0x80)
            {
                length = first;
                return;
            }

            length = 0;
            for (int n = first & 0x7F; n > 0; n--) length = (length << 8) | der[at++];
        }

        private static void Skip(byte[] der, ref int at)
        {
            ReadHeader(der, ref at, out int length);
            at += length;
        }
    }

    /// <summary>Why a peer's certificate is refused, in words.</summary>
    internal static class CertificateChecks
    {
        /// <summary>Client side: null when the server's certificate is acceptable, else why not.</summary>
        public static string CheckServer(X509Certificate certificate, X509Chain chain, SslPolicyErrors errors, ConnectionOptions options, string serverName)
        {
            if (certificate == null) return "the server sent no certificate";
            var cert = Certificates.AsCertificate2(certificate);
            var pins = options.CertificateThumbprints;
            if (pins != null && pins.Count > 0)
            {
                return pins.Any(pin => Certificates.MatchesPin(cert, pin)) ? null
                    : $"it matches none of the pinned thumbprints (it is SHA-1 {cert.Thumbprint}, SHA-256 {Certificates.Sha256Thumbprint(cert)}, public key {Certificates.PublicKeyPin(cert)})";
            }

            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                return $"name mismatch: the certificate is for '{cert.GetNameInfo(X509NameType.DnsName, false)}', not '{serverName}' (-ServerName names the one to expect)";
            }

            return CheckChain(cert, chain, errors, options.TrustedCertificates, "server");
        }

        /// <summary>
        /// The chain: against <paramref name="trusted"/> when given (one of them must be in the chain,
        /// the system's store plays no part), else what the runtime found (<paramref name="errors"/>).
        /// </summary>
        public static string CheckChain(X509Certificate2 certificate, X509Chain runtimeChain, SslPolicyErrors errors,
            X509Certificate2Collection trusted, string whose)
        {
            if (trusted == null)
            {
                if (errors == SslPolicyErrors.None) return null;
                if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return $"the {whose} sent no certificate";
                return Describe(certificate, runtimeChain, $"the system's trusted authorities");
            }

            using (var chain = new X509Chain())
            {
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                chain.ChainPolicy.ExtraStore.AddRange(trusted);
                chain.Build(certificate);
                var anchored = chain.ChainElements.Cast<X509ChainElement>()
                    .Any(element => trusted.Cast<X509Certificate2>().Any(t => t.RawData.SequenceEqual(element.Certificate.RawData)));
                if (!anchored)
                {
                    return $"unknown authority: the {whose}'s certificate '{certificate.Subject}' is issued by '{certificate.Issuer}', which is not in -TrustedCertificatePath";
                }

                var problems = chain.ChainElements.Cast<X509ChainElement>()
                    .SelectMany(element => element.ChainElementStatus)
                    .Where(status => status.Status != X509ChainStatusFlags.UntrustedRoot && status.Status != X509ChainStatusFlags.PartialChain
                        && status.Status != X509ChainStatusFlags.NoError && status.Status != X509ChainStatusFlags.RevocationStatusUnknown
                        && status.Status != X509ChainStatusFlags.OfflineRevocation)
                    .Select(status => $"{status.Status}: {status.StatusInformation.Trim()}")
                    .Distinct()
                    .ToList();
                return problems.Count == 0 ? null : $"the {whose}'s certificate '{certificate.Subject}' is not valid ({string.Join("; ", problems)})";
            }
        }

        private static string Describe(X509Certificate2 certificate, X509Chain chain, string against)
        {
            var statuses = chain?.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.NoError).ToList() ?? new List<X509ChainStatus>();
            bool unknown = statuses.Any(s => s.Status == X509ChainStatusFlags.UntrustedRoot || s.Status == X509ChainStatusFlags.PartialChain);
            var detail = string.Join("; ", statuses.Select(s => $"{s.Status}: {s.StatusInformation.Trim()}").Distinct());
            return (unknown ? $"unknown authority: '{certificate.Subject}', issued by '{certificate.Issuer}', does not chain to {against}" : $"'{certificate.Subject}' is not valid")
                + (detail.Length > 0 ? $" ({detail})" : string.Empty);
        }
    }

    /// <summary>A TLS failure's real cause, from the exception chain, with what it means.</summary>
    internal static class TlsErrors
    {
        public static bool HasTlsCause(Exception e)
        {
            for (var x = e; x != null; x = x.InnerException)
            {
                if (x is AuthenticationException || x.GetType().Name.IndexOf("Ssl", StringComparison.OrdinalIgnoreCase) >= 0
                    || x.Message.IndexOf("alert", StringComparison.OrdinalIgnoreCase) >= 0)
                {
                    return true;
                }
            }

            return false;
        }

        public static string Describe(Exception e, bool server, SslProtocols protocols)
        {
            var messages = new List<string>();
            for (var x = e; x != null; x = x.InnerException)
            {
                var m = x.Message.Trim();
                if (m.Length == 0 || m.IndexOf("see inner exception", StringComparison.OrdinalIgnoreCase) >= 0) continue;
                if (!messages.Contains(m)) messages.Add(m);
            }

            var all = string.Join(" ", messages).ToLowerInvariant();
            string meaning = null;
            if (all.Contains("certificate required") || all.Contains("peer did not return a certificate") || all.Contains("handshake failure") && all.Contains("certificate"))
            {
                meaning = server ? "the client sent no certificate, and one is required"
                    : "the server requires a client certificate and none was sent (-ClientCertificate or -ClientCertificatePath)";
            }
            else if (all.Contains("unknown ca"))
            {
                meaning = server ? "the client does not trust this server's certificate (unknown CA)"
                    : "the server does not trust our client certificate's issuer (unknown CA)";
            }
            else if (all.Contains("bad certificate") || all.Contains("certificate unknown") || all.Contains("unsupported certificate"))
            {
                meaning = server ? "the client refused this server's certificate" : "the server refused our client certificate";
            }
            else if (all.Contains("protocol version") || all.Contains("unsupported protocol") || all.Contains("no protocols available"))
            {
                meaning = "no TLS version in common" + (protocols != SslProtocols.None ? $" (allowed here: {protocols})" : string.Empty);
            }
            else if (all.Contains("no application protocol"))
            {
                meaning = "no ALPN protocol in common (-ApplicationProtocol)";
            }
            else if (all.Contains("wrong version number") || all.Contains("http request") || all.Contains("packet length too long"))
            {
                meaning = "the peer does not speak TLS";
            }
            else if (all.Contains("alert handshake failure"))
            {
                meaning = server ? "the client gave up the handshake"
                    : "the server refused the handshake: it may require a client certificate (-ClientCertificate), or share no TLS version or cipher suite with us";
            }
            else if (all.Contains("unexpected eof") || all.Contains("0 bytes from the transport"))
            {
                meaning = "the peer closed the connection during the handshake";
            }

            var detail = messages.Count == 0 ? e.GetType().Name : messages[messages.Count - 1];
            return meaning == null ? detail : $"{meaning} ({detail})";
        }
    }
}

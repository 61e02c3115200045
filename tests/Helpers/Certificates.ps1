# Test certificates for the TLS tests.

function New-TestCertificate {
    <#
    .SYNOPSIS
        A self-signed RSA 2048 certificate for CN=localhost with a SAN of localhost, with its
        private key (re-imported from PFX so SslStream can use the key on every platform).
        -NoPrivateKey returns the public part only.
    #>
    param([string] $Subject = 'localhost', [switch] $NoPrivateKey)
    $rsa = [System.Security.Cryptography.RSA]::Create(2048)
    try {
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new(
            "CN=$Subject", $rsa, [System.Security.Cryptography.HashAlgorithmName]::SHA256,
            [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $san = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
        $san.AddDnsName($Subject)
        $request.CertificateExtensions.Add($san.Build())
        $usage = [System.Security.Cryptography.OidCollection]::new()
        $null = $usage.Add([System.Security.Cryptography.Oid]::new('1.3.6.1.5.5.7.3.1'))   # server authentication
        $request.CertificateExtensions.Add([System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]::new($usage, $false))
        $now = [DateTimeOffset]::UtcNow
        $cert = $request.CreateSelfSigned($now.AddMinutes(-5), $now.AddDays(1))
        if ($NoPrivateKey) {
            return [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Cert))
        }
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx))
    } finally {
        $rsa.Dispose()
    }
}

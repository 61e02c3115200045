# Complete TLS against openssl: mutual TLS both ways, PEM and PFX client certificates, a private CA
# (-TrustedCertificatePath), pins, ALPN, TLS details on connections, and handshake failures with
# their real cause. Certificates are made with openssl in the test's own directory.

BeforeDiscovery {
    $script:NoOpenssl = $null -eq (Get-Command openssl -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $seconds10 = [TimeSpan]::FromSeconds(10)
    if (Get-Command openssl -CommandType Application -ErrorAction SilentlyContinue) {
        $pki = New-TestPki -Directory (Join-Path $TestDrive 'pki')
    }
}

Describe 'TLS client against openssl s_server -Verify 1' -Skip:$NoOpenssl {
    BeforeAll {
        $port = Get-FreeTcpPort
        # -rev answers each line reversed; -alpn lists what it accepts, its own preference first.
        $sServer = Start-TestProgram openssl @('s_server', '-accept', "127.0.0.1:$port", '-cert', $pki.ServerPem, '-key', $pki.ServerKey,
            '-CAfile', $pki.CaPem, '-Verify', '1', '-verify_return_error', '-alpn', 'redis,h2', '-rev') -Port $port
        $serverCert = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($pki.ServerPem)
        $mutual = @{ ClientCertificatePath = $pki.ClientPem; ClientCertificateKeyPath = $pki.ClientKey; TrustedCertificatePath = $pki.CaPem }
    }
    AfterAll {
        Clear-PSTcpState
        Stop-TestProgram $sServer
    }
    AfterEach { Get-TcpConnection | Disconnect-TcpEndpoint -ErrorAction SilentlyContinue }

    It 'presents a PEM client certificate, trusts the private CA and shows the TLS details' {
        $c = Connect-TcpEndpoint localhost $port @mutual -ApplicationProtocol redis -Timeout $seconds10
        Send-TcpLine -Connection $c -Line 'hello'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('olleh')
        $c.Tls.Protocol | Should -BeIn @('Tls12', 'Tls13')
        $c.Tls.CipherSuite | Should -Match '^TLS_'
        $c.Tls.ApplicationProtocol | Should -BeExactly 'redis'
        $c.Tls.RemoteCertificate.Subject | Should -Be 'CN=localhost'
        $c.Tls.RemoteCertificate.Issuer | Should -Be 'CN=PSTcp Test CA'
    }

    It 'presents a PFX client certificate (-ClientCertificatePath) and an X509Certificate2 (-ClientCertificate)' {
        $pem = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($pki.ClientPem, $pki.ClientKey)
        $pfx = Join-Path $TestDrive 'client.pfx'
        [System.IO.File]::WriteAllBytes($pfx, $pem.Export('Pfx', 'secret'))
        $password = ConvertTo-SecureString 'secret' -AsPlainText -Force
        $c = Connect-TcpEndpoint localhost $port -ClientCertificatePath $pfx -ClientCertificatePassword $password -TrustedCertificatePath $pki.CaPem
        Send-TcpLine -Connection $c -Line 'pfx'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('xfp')
        # s_server serves one connection at a time.
        $c | Disconnect-TcpEndpoint
        $withKey = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($pfx, 'secret')
        $r = Invoke-TcpRequest localhost $port 'object' -ClientCertificate $withKey -TrustedCertificatePath $pki.CaPem -Timeout $seconds10
        $r.Text | Should -BeExactly 'tcejbo'
    }

    It 'negotiates ALPN: <Offer> gives <Expected>' -ForEach @(
        @{ Offer = @('nope', 'h2'); Expected = 'h2' }
        @{ Offer = @('h2', 'redis'); Expected = 'redis' }
    ) {
        $c = Connect-TcpEndpoint localhost $port @mutual -ApplicationProtocol $Offer -Timeout $seconds10
        $c.Tls.ApplicationProtocol | Should -Be $Expected
    }

    It 'fails the handshake when no ALPN protocol is in common, saying so' {
        # OpenSSL's s_server answers with the no_application_protocol alert.
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $port @mutual -ApplicationProtocol 'nope' -Timeout $seconds10 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*'
        "$($r.Errors[0])" | Should -BeLike '*no ALPN protocol in common*'
    }

    It 'reports a missing client certificate as TlsHandshakeFailed naming it, not ConnectionClosed' {
        # TLS 1.3: the handshake completes and the refusal arrives as an alert on the first read.
        $r = Invoke-Captured {
            $c = Connect-TcpEndpoint localhost $port -TrustedCertificatePath $pki.CaPem -Timeout $seconds10
            Send-TcpLine -Connection $c -Line 'no cert'
            Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10
        }
        $r.Output | Should -HaveCount 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*'
        "$($r.Errors[0])" | Should -BeLike '*requires a client certificate*'
        $c = @(Get-TcpConnection)[-1]
        $sent = Invoke-Captured { Send-TcpLine -Connection $c -Line 'again' }
        $sent.Errors[0].FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*' -Because 'a send after the alert reports it too'
    }

    It 'reports a missing client certificate under TLS 1.2 as TlsHandshakeFailed at connect' {
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $port -TrustedCertificatePath $pki.CaPem -SslProtocol Tls12 -Timeout $seconds10 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*'
        "$($r.Errors[0])" | Should -BeLike '*client certificate*'
    }

    It 'refuses a server certificate from an unknown authority with CertificateInvalid' {
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $port -ClientCertificatePath $pki.ClientPem -ClientCertificateKeyPath $pki.ClientKey -TrustedCertificatePath $pki.OtherCaPem }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'CertificateInvalid,*'
        "$($r.Errors[0])" | Should -BeLike '*unknown authority*'
    }

    It 'refuses a name mismatch with CertificateInvalid' {
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $port @mutual -ServerName 'elsewhere.example' }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'CertificateInvalid,*'
        "$($r.Errors[0])" | Should -BeLike "*name mismatch*elsewhere.example*"
    }

    It 'pins the server by <Kind>' -ForEach @(
        @{ Kind = 'SHA-1 thumbprint'; Pin = { $serverCert.Thumbprint } }
        @{ Kind = 'SHA-256 thumbprint'; Pin = { [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($serverCert.RawData)) } }
        @{ Kind = 'public key'; Pin = { 'sha256//' + [Convert]::ToBase64String([System.Security.Cryptography.SHA256]::HashData($serverCert.PublicKey.ExportSubjectPublicKeyInfo())) } }
    ) {
        # No CA file: the pin alone makes the private CA's certificate acceptable.
        $c = Connect-TcpEndpoint localhost $port -ClientCertificatePath $pki.ClientPem -ClientCertificateKeyPath $pki.ClientKey -CertificateThumbprint ('00' * 20), (& $Pin)
        $c.Tls.RemoteCertificate.Thumbprint | Should -Be $serverCert.Thumbprint
    }

    It 'refuses a certificate that matches no pin' {
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $port -ClientCertificatePath $pki.ClientPem -ClientCertificateKeyPath $pki.ClientKey -CertificateThumbprint ('AB' * 20) }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'CertificateInvalid,*'
        "$($r.Errors[0])" | Should -BeLike "*pinned*$($serverCert.Thumbprint)*"
    }
}

Describe 'TLS handshake stall' {
    It 'is TlsHandshakeFailed ("timed out during the TLS handshake"), not ConnectTimeout' {
        # The kernel accepts into the backlog; nobody ever answers the ClientHello.
        $listener = New-RawListener
        try {
            $r = Invoke-Captured { Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -UseTls -Timeout '2s' }
            $r.Elapsed.TotalSeconds | Should -BeLessThan 10
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'TlsHandshakeFailed,*'
            "$($r.Errors[0])" | Should -BeLike '*timed out during the TLS handshake*'
        } finally { $listener.Stop() }
    }
}

Describe 'TLS server against openssl s_client' -Skip:$NoOpenssl {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -CertificatePath $pki.ServerPem -CertificateKeyPath $pki.ServerKey `
            -ClientCertificateMode Require -TrustedCertificatePath $pki.CaPem -ApplicationProtocol h2 -Name "mtls-$([guid]::NewGuid().ToString('N'))"
        function Start-SClient([string[]] $Extra) {
            Start-TestProgram openssl (@('s_client', '-connect', "127.0.0.1:$($server.Port)", '-servername', 'localhost', '-CAfile', $pki.CaPem,
                    '-verify_return_error', '-quiet') + $Extra) -RedirectInput
        }
    }
    AfterAll { Clear-PSTcpState }
    AfterEach { Stop-TestProgram $client; $client = $null }

    It 'serves s_client -cert, echoes, and shows the client certificate and ALPN on the connection' {
        $client = Start-SClient @('-cert', $pki.ClientPem, '-key', $pki.ClientKey, '-alpn', 'h2')
        $client.Process.StandardInput.WriteLine('mutual hello')
        $client.Process.StandardInput.Flush()
        Wait-Until { (Get-TestProgramOutput $client) -contains 'mutual hello' } -Timeout 15 -Because 's_client prints the echo'
        $connection = @(Get-TcpConnection -Server $server)[0]
        $connection.Tls.RemoteCertificate.Subject | Should -Be 'CN=pstcp-client'
        $connection.Tls.ApplicationProtocol | Should -BeExactly 'h2'
        $connection.Tls.Protocol | Should -BeIn @('Tls12', 'Tls13')
    }

    It 'refuses s_client without a certificate: TlsHandshakeFailed, "no certificate"' {
        $errors = (Get-TcpServer -Id $server.Id).ErrorCount
        $client = Start-SClient @()
        Wait-Until { (Get-TcpServer -Id $server.Id).ErrorCount -gt $errors } -Timeout 15 -Because 'the refused handshake is recorded'
        $server.LastError.Kind | Should -Be 'TlsHandshakeFailed'
        $server.LastError.Message | Should -BeLike '*sent no certificate*'
    }

    It 'refuses a certificate from another CA: CertificateInvalid, "unknown authority"' {
        $errors = (Get-TcpServer -Id $server.Id).ErrorCount
        $client = Start-SClient @('-cert', $pki.StrangerPem, '-key', $pki.StrangerKey)
        Wait-Until { (Get-TcpServer -Id $server.Id).ErrorCount -gt $errors } -Timeout 15 -Because 'the refused handshake is recorded'
        $server.LastError.Kind | Should -Be 'CertificateInvalid'
        $server.LastError.Message | Should -BeLike '*unknown authority*'
    }

    It 'refuses TLS options without a certificate' {
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -ClientCertificateMode Require }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }
}

Describe 'A server certificate per SNI name' {
    AfterAll { Clear-PSTcpState }

    It 'serves <Asked> the certificate for <Expected>' -ForEach @(
        @{ Asked = 'b.test'; Expected = 'CN=b.test' }
        @{ Asked = 'x.wild.test'; Expected = 'CN=wild.test' }
        @{ Asked = 'other.test'; Expected = 'CN=localhost' }
    ) {
        if (-not $script:sniServer) {
            $script:sniServer = Start-TcpEchoServer -Port 0 -Certificate (New-TestCertificate -Subject localhost) `
                -CertificateByServerName @{ 'b.test' = (New-TestCertificate -Subject b.test); '*.wild.test' = (New-TestCertificate -Subject wild.test) }
        }
        $c = Connect-TcpEndpoint 127.0.0.1 $sniServer.Port -ServerName $Asked -SkipCertificateCheck
        $c.Tls.RemoteCertificate.Subject | Should -Be $Expected
        $c | Disconnect-TcpEndpoint
    }
}

# TLS servers (-Certificate, -CertificatePath) and clients (-UseTls, -SkipCertificateCheck),
# with a self-signed certificate made here; bad peers cost only their own connection.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)
    # RSA 2048, CN=localhost, SAN localhost, self-signed, re-imported from PFX (see
    # New-TestCertificate in TestHelpers.psm1).
    $cert = New-TestCertificate -Subject localhost

    function Get-LiveServer { Get-TcpServer -Id $server.Id }
}

Describe 'TLS echo server' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -Certificate $cert -Name "tls-$([guid]::NewGuid().ToString('N'))"
    }
    AfterAll { Clear-PSTcpState }
    BeforeEach { $raw = $null }
    AfterEach {
        Close-RawClient $raw
        Get-TcpConnection | Disconnect-TcpEndpoint -ErrorAction SilentlyContinue
    }

    It 'has a certificate with its private key' {
        $cert.HasPrivateKey | Should -BeTrue
        $cert.Subject | Should -Be 'CN=localhost'
        $server.State | Should -Be 'Running'
    }

    It 'refuses an untrusted certificate with CertificateInvalid' {
        $r = Invoke-Captured { Connect-TcpEndpoint localhost $server.Port -UseTls -Timeout $seconds10 }
        $r.Output | Should -HaveCount 0
        $r.Errors.Count | Should -BeGreaterThan 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'CertificateInvalid*'
        @(Get-TcpConnection) | Should -HaveCount 0
    }

    It 'echoes byte for byte with -SkipCertificateCheck' {
        $c = Connect-TcpEndpoint localhost $server.Port -SkipCertificateCheck
        $c.State | Should -Be 'Open'
        $text = "caf$([char]0xE9) $([char]0x2603) tls"
        Send-TcpLine -Connection $c -Line $text, 'second'
        $echo = @(Receive-TcpMessage -Connection $c -Count 2 -Timeout $seconds10)
        $echo.Text | Should -BeExactly @($text, 'second')
        ConvertTo-Hex $echo[0].Data | Should -Be (ConvertTo-Hex (ConvertTo-Bytes $text))
        $queued = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @($text, 'second')
        Wait-Until { $c.BytesReceived -eq $c.BytesSent } -Because 'the echo is exactly as long as what was sent'
    }

    It 'sends ciphertext, not the plain line' {
        # A raw client that speaks no TLS gets no plain echo of its line.
        $raw = New-RawClient $server.Port
        Send-RawBytes $raw "plain text`n"
        $back = ConvertFrom-Bytes (Read-RawAvailable $raw -Window '500ms')
        $back | Should -Not -BeLike '*plain text*'
    }

    It 'closes only the connection of a <Name>, counts it, and keeps TLS clients working' -ForEach @(
        @{ Name = 'plain-text client'; Bytes = "GET / HTTP/1.0`r`n`r`n"; CloseFirst = $false }
        @{ Name = 'garbage sender'; Bytes = [byte[]](0x16, 0x03, 0x01, 0x00, 0x05, 0xFF, 0xFE, 0x00, 0x13, 0x37, 0xAA, 0x55); CloseFirst = $false }
        @{ Name = 'client sending 10 NUL bytes then closing'; Bytes = [byte[]]::new(10); CloseFirst = $true }
    ) {
        $good = Connect-TcpEndpoint localhost $server.Port -SkipCertificateCheck
        Send-TcpLine -Connection $good -Line 'before'
        $null = Receive-TcpMessage -Connection $good -Count 1 -Timeout $seconds10
        $errors = (Get-LiveServer).ErrorCount
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 1 }

        $raw = New-RawClient $server.Port
        Send-RawBytes $raw $Bytes
        if ($CloseFirst) {
            Close-RawSend $raw
        }
        Test-RawClosed $raw -Timeout 15 | Should -BeTrue -Because "the server closes the $Name's connection"
        Wait-Until { (Get-LiveServer).ErrorCount -eq $errors + 1 } -Timeout 15 -Because 'the failed handshake is counted'
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 1 }
        (Get-LiveServer).State | Should -Be 'Running'

        # The TLS client that was connected all along, and a new one, still echo.
        Send-TcpLine -Connection $good -Line 'after'
        @(Receive-TcpMessage -Connection $good -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('after')
        $fresh = Connect-TcpEndpoint localhost $server.Port -SkipCertificateCheck
        Send-TcpLine -Connection $fresh -Line 'fresh'
        @(Receive-TcpMessage -Connection $fresh -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('fresh')
        # Nothing of the bad bytes was queued.
        $queued = @(Receive-TcpMessage -Server $server -Count 3 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @('before', 'after', 'fresh')
    }
}

Describe 'TLS from a PFX file' {
    AfterEach { Clear-PSTcpState }

    It 'serves TLS with -CertificatePath and -CertificatePassword' {
        $password = 'pstcp-test-' + [guid]::NewGuid().ToString('N')
        $pfx = Join-Path $TestDrive 'server.pfx'
        [System.IO.File]::WriteAllBytes($pfx, $cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, $password))
        $secure = ConvertTo-SecureString $password -AsPlainText -Force
        $server = Start-TcpEchoServer -Port 0 -CertificatePath $pfx -CertificatePassword $secure
        $c = Connect-TcpEndpoint localhost $server.Port -SkipCertificateCheck
        Send-TcpLine -Connection $c -Line 'from pfx'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('from pfx')
    }

    It 'fails with the wrong password' {
        $pfx = Join-Path $TestDrive 'locked.pfx'
        [System.IO.File]::WriteAllBytes($pfx, $cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx, 'right'))
        $secure = ConvertTo-SecureString 'wrong' -AsPlainText -Force
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -CertificatePath $pfx -CertificatePassword $secure }
        $r.Output | Should -HaveCount 0
        $r.Errors.Count | Should -BeGreaterThan 0
    }
}

Describe 'TLS with Start-TcpServer and bad certificates' {
    AfterEach { Clear-PSTcpState }

    It 'answers through a -ScriptBlock handler over TLS' {
        $server = Start-TcpServer -Port 0 -Certificate $cert -ScriptBlock { param($Message) "secure $($Message.Text)" }
        $c = Connect-TcpEndpoint localhost $server.Port -SkipCertificateCheck
        Send-TcpLine -Connection $c -Line 'hello'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('secure hello')
    }

    It 'refuses a certificate without its private key' {
        $public = New-TestCertificate -NoPrivateKey
        $public.HasPrivateKey | Should -BeFalse
        $before = @(Get-TcpServer).Count
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -Certificate $public }
        $r.Output | Should -HaveCount 0
        $r.Errors.Count | Should -BeGreaterThan 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'CertificateInvalid*'
        @(Get-TcpServer).Count | Should -Be $before -Because 'nothing is half-started'
    }
}

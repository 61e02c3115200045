BeforeDiscovery {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $ipv6 = Test-IPv6Loopback
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
}

Describe 'Connect-TcpEndpoint -ProxyProtocol' {
    BeforeEach { $listener = New-RawListener }
    AfterEach {
        Clear-PSTcpState
        $listener.Stop()
    }

    It 'sends a v1 header naming its own end points, then the lines' {
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -ProxyProtocol V1
        $peer = Receive-RawConnection $listener
        try {
            'hello' | Send-TcpLine -Connection $client
            $expected = "PROXY TCP4 127.0.0.1 127.0.0.1 $($client.LocalEndPoint.Port) $($listener.LocalEndpoint.Port)`r`nhello`n"
            $bytes = Read-RawBytes $peer ([System.Text.Encoding]::ASCII.GetByteCount($expected))
            [System.Text.Encoding]::ASCII.GetString($bytes) | Should -BeExactly $expected
        } finally {
            Close-RawClient $peer
        }
    }

    It 'sends a v2 header byte for byte, then the lines' {
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -ProxyProtocol v2
        $peer = Receive-RawConnection $listener
        try {
            'hello' | Send-TcpLine -Connection $client
            $src = $client.LocalEndPoint.Port
            $dst = $listener.LocalEndpoint.Port
            $expected = [byte[]](@(0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
                    0x21, 0x11, 0x00, 0x0C, 127, 0, 0, 1, 127, 0, 0, 1,
                    ($src -shr 8), ($src -band 0xFF), ($dst -shr 8), ($dst -band 0xFF)) + [System.Text.Encoding]::ASCII.GetBytes("hello`n"))
            $bytes = Read-RawBytes $peer $expected.Length
            ConvertTo-Hex $bytes | Should -Be (ConvertTo-Hex $expected)
        } finally {
            Close-RawClient $peer
        }
    }

    It 'sends a TCP6 header over IPv6' -Skip:(-not $ipv6) {
        $listener6 = New-RawListener -Address '::1'
        try {
            $client = Connect-TcpEndpoint '::1' $listener6.LocalEndpoint.Port -ProxyProtocol V1
            $peer = Receive-RawConnection $listener6
            $expected = "PROXY TCP6 ::1 ::1 $($client.LocalEndPoint.Port) $($listener6.LocalEndpoint.Port)`r`n"
            [System.Text.Encoding]::ASCII.GetString((Read-RawBytes $peer $expected.Length)) | Should -BeExactly $expected
            Close-RawClient $peer
        } finally {
            $listener6.Stop()
        }
    }

    It 'sends the header in the clear before the TLS handshake' {
        $r = Invoke-Captured {
            Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -ProxyProtocol V1 -SkipCertificateCheck -Timeout '00:00:02'
        }
        $peer = Receive-RawConnection $listener
        try {
            $bytes = Read-RawAvailable $peer -Window '300ms'
            $text = [System.Text.Encoding]::ASCII.GetString($bytes)
            $text | Should -Match '^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n'
            $headerLength = $text.IndexOf("`n") + 1
            # What follows the header is a TLS handshake record (content type 22).
            $bytes.Length | Should -BeGreaterThan $headerLength
            $bytes[$headerLength] | Should -Be 0x16
        } finally {
            Close-RawClient $peer
        }
        # The raw listener never answers the handshake: the attempt fails within its timeout.
        $r.Errors | Should -Not -BeNullOrEmpty
    }

    It 'sends no header by default' {
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port
        $peer = Receive-RawConnection $listener
        try {
            'hello' | Send-TcpLine -Connection $client
            [System.Text.Encoding]::ASCII.GetString((Read-RawBytes $peer 6)) | Should -BeExactly "hello`n"
        } finally {
            Close-RawClient $peer
        }
    }
}

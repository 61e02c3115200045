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

Describe 'Servers with -ProxyProtocol' {
    BeforeAll {
        $signature = [byte[]](0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A)
        # A v2 header built by hand from the specification: PROXY, TCP over IPv4, no TLVs.
        function New-V2Header([string] $Source, [int] $SourcePort, [string] $Destination, [int] $DestinationPort, [byte[]] $Tlvs = @()) {
            $block = [System.Collections.Generic.List[byte]]::new()
            $block.AddRange([System.Net.IPAddress]::Parse($Source).GetAddressBytes())
            $block.AddRange([System.Net.IPAddress]::Parse($Destination).GetAddressBytes())
            $block.AddRange([byte[]](($SourcePort -shr 8), ($SourcePort -band 0xFF), ($DestinationPort -shr 8), ($DestinationPort -band 0xFF)))
            $block.AddRange($Tlvs)
            , [byte[]]($signature + [byte[]](0x21, 0x11, ($block.Count -shr 8), ($block.Count -band 0xFF)) + $block.ToArray())
        }
        function Get-Ascii([string] $Text) { , [System.Text.Encoding]::ASCII.GetBytes($Text) }
    }
    BeforeEach { $sockets = [System.Collections.Generic.List[object]]::new() }
    AfterEach {
        Close-RawClient $sockets.ToArray()
        Clear-PSTcpState
    }

    It 'takes the client address from a v1 header, for the connection and its messages' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        $s = New-RawClient $server.Port; $sockets.Add($s)
        Send-RawBytes $s (Get-Ascii "PROXY TCP4 192.0.2.10 198.51.100.1 40000 443`r`nhello`n")
        ConvertFrom-Bytes (Read-RawBytes $s 6) | Should -BeExactly "hello`n"
        $m = Receive-TcpMessage -Server $server -Count 1 -Timeout '00:00:05'
        $m.Text | Should -BeExactly 'hello'
        "$($m.RemoteEndPoint)" | Should -Be '192.0.2.10:40000'
        "$((Get-TcpConnection -Server $server).RemoteEndPoint)" | Should -Be '192.0.2.10:40000'
        (Get-TcpConnection -Server $server | Out-String -Width 200) | Should -Match '192\.0\.2\.10:40000'
        $server.ConnectionsRejected | Should -Be 0
    }

    It 'takes the client address from a hand-built v2 header, with TLVs and an IPv6 client' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        $s = New-RawClient $server.Port; $sockets.Add($s)
        Send-RawBytes $s ((New-V2Header '203.0.113.5' 5555 '127.0.0.1' 80 -Tlvs ([byte[]](0x04, 0x00, 0x02, 0, 0))) + (Get-Ascii "v2`n"))
        $null = Read-RawBytes $s 3
        $six = New-RawClient $server.Port; $sockets.Add($six)
        $block = [System.Net.IPAddress]::Parse('2001:db8::7').GetAddressBytes() + [System.Net.IPAddress]::Parse('2001:db8::1').GetAddressBytes() + [byte[]](0x1F, 0x90, 0x00, 0x50)
        Send-RawBytes $six ([byte[]]($signature + [byte[]](0x21, 0x21, 0x00, 36) + $block) + (Get-Ascii "v6`n"))
        $null = Read-RawBytes $six 3
        $messages = Receive-TcpMessage -Server $server -Count 2 -Timeout '00:00:05' | Sort-Object Text
        "$($messages[0].RemoteEndPoint)" | Should -Be '203.0.113.5:5555'
        "$($messages[1].RemoteEndPoint)" | Should -Be '[2001:db8::7]:8080'
    }

    It 'parses a <Kind> header sent one byte at a time' -TestCases @(
        @{ Kind = 'v1'; Header = [System.Text.Encoding]::ASCII.GetBytes("PROXY TCP4 192.0.2.77 127.0.0.1 1234 80`r`n"); Expected = '192.0.2.77:1234' }
        @{ Kind = 'v2'; Header = $null; Expected = '192.0.2.78:4321' }
    ) {
        if ($null -eq $Header) { $Header = New-V2Header '192.0.2.78' 4321 '127.0.0.1' 80 }
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        $s = New-RawClient $server.Port; $sockets.Add($s)
        foreach ($b in $Header) { Send-RawBytes $s ([byte[]]@($b)) }
        Send-RawBytes $s (Get-Ascii "split`n")
        ConvertFrom-Bytes (Read-RawBytes $s 6) | Should -BeExactly "split`n"
        "$((Receive-TcpMessage -Server $server -Count 1 -Timeout '00:00:05').RemoteEndPoint)" | Should -Be $Expected
    }

    It 'keeps the real address for a LOCAL header (a health check)' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        $s = New-RawClient $server.Port; $sockets.Add($s)
        Send-RawBytes $s ([byte[]]($signature + [byte[]](0x20, 0x00, 0x00, 0x00)) + (Get-Ascii "check`n"))
        $null = Read-RawBytes $s 6
        "$((Receive-TcpMessage -Server $server -Count 1 -Timeout '00:00:05').RemoteEndPoint)" | Should -Be "127.0.0.1:$($s.LocalEndPoint.Port)"
        $server.ConnectionsRejected | Should -Be 0
        $server.ErrorCount | Should -Be 0
    }

    It 'closes and counts a connection <Case>' -TestCases @(
        @{ Case = 'without a header'; Bytes = [System.Text.Encoding]::ASCII.GetBytes("hello`n") }
        @{ Case = 'with a malformed v1 header'; Bytes = [System.Text.Encoding]::ASCII.GetBytes("PROXY TCP4 300.1.1.1 127.0.0.1 1 2`r`nhello`n") }
        @{ Case = 'with a bad v2 version'; Bytes = [byte[]](0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x11, 0x11, 0x00, 0x0C) }
        @{ Case = 'with a v1 header that never ends'; Bytes = [System.Text.Encoding]::ASCII.GetBytes('PROXY UNKNOWN ' + ('x' * 200)) }
    ) {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        $s = New-RawClient $server.Port; $sockets.Add($s)
        Send-RawBytes $s $Bytes
        Test-RawClosed $s -Timeout 5 | Should -BeTrue
        Wait-Until { $server.ConnectionsRejected -eq 1 } -Timeout 5
        $server.MessagesReceived | Should -Be 0
        # The server keeps serving others.
        $good = New-RawClient $server.Port; $sockets.Add($good)
        Send-RawBytes $good (Get-Ascii "PROXY UNKNOWN`r`nok`n")
        ConvertFrom-Bytes (Read-RawBytes $good 3) | Should -BeExactly "ok`n"
    }

    It 'closes and counts a header from an address outside -TrustedProxy' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol -TrustedProxy 10.0.0.0/8
        $s = New-RawClient $server.Port; $sockets.Add($s)
        Send-RawBytes $s (Get-Ascii "PROXY TCP4 192.0.2.10 127.0.0.1 1 2`r`nhello`n")
        Test-RawClosed $s -Timeout 5 | Should -BeTrue
        Wait-Until { $server.ConnectionsRejected -eq 1 } -Timeout 5
        $server.MessagesReceived | Should -Be 0
    }

    It 'applies -AllowedRemoteAddress to the real source, not to the proxy' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol -AllowedRemoteAddress 192.0.2.0/24
        $allowed = New-RawClient $server.Port; $sockets.Add($allowed)
        Send-RawBytes $allowed (Get-Ascii "PROXY TCP4 192.0.2.99 127.0.0.1 1000 2000`r`nin`n")
        ConvertFrom-Bytes (Read-RawBytes $allowed 3) | Should -BeExactly "in`n"
        $denied = New-RawClient $server.Port; $sockets.Add($denied)
        Send-RawBytes $denied (Get-Ascii "PROXY TCP4 198.51.100.1 127.0.0.1 1000 2000`r`nout`n")
        Test-RawClosed $denied -Timeout 5 | Should -BeTrue
        Wait-Until { $server.ConnectionsRejected -eq 1 } -Timeout 5
        (Receive-TcpMessage -Server $server -Count 1 -Timeout '00:00:05').Text | Should -BeExactly 'in'
        $server.MessagesReceived | Should -Be 1
    }

    It 'rejects an invalid -TrustedProxy' {
        { Start-TcpEchoServer -Port 0 -ProxyProtocol -TrustedProxy 'not-an-address' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidAddressRange*'
    }

    It 'reads the header that Connect-TcpEndpoint -ProxyProtocol sends' {
        $server = Start-TcpEchoServer -Port 0 -ProxyProtocol
        foreach ($version in 'V1', 'V2') {
            $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -ProxyProtocol $version
            "via $version" | Send-TcpLine -Connection $client
            (Receive-TcpMessage -Connection $client -Count 1 -Timeout '00:00:05').Text | Should -BeExactly "via $version"
            $m = Receive-TcpMessage -Server $server -Count 1 -Timeout '00:00:05'
            "$($m.RemoteEndPoint)" | Should -Be "$($client.LocalEndPoint)"
            $client | Disconnect-TcpEndpoint
        }
    }
}

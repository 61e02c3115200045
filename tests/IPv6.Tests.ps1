# IPv6 loopback and dual-stack listening. Skipped where this machine has no IPv6 loopback.

BeforeDiscovery {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $ipv6 = Test-IPv6Loopback
    $dualStack = Test-DualStack
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)
}

Describe 'IPv6' -Skip:(-not $ipv6) {
    BeforeEach { $raw4 = $null; $raw6 = $null }
    AfterEach {
        Close-RawClient $raw4, $raw6
        Clear-PSTcpState
    }

    It 'serves on ::1 to Connect-TcpEndpoint ::1' {
        $server = Start-TcpEchoServer -Port 0 -Address ::1
        $server.LocalEndPoint.Address.ToString() | Should -Be '::1'
        $c = Connect-TcpEndpoint ::1 $server.Port
        $c.RemoteEndPoint.AddressFamily | Should -Be 'InterNetworkV6'
        Send-TcpLine -Connection $c -Line 'six'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('six')
        $queued = @(Receive-TcpMessage -Server $server -Count 1 -Timeout $seconds10)
        $queued[0].RemoteEndPoint.Address.ToString() | Should -Be '::1'
        # An IPv6-only loopback listener is not reachable over IPv4.
        { New-RawClient $server.Port -Address 127.0.0.1 -Timeout 3 } | Should -Throw
    }

    It 'accepts 127.0.0.1 and ::1 clients on a dual-stack :: server' -Skip:(-not $dualStack) {
        $server = Start-TcpEchoServer -Port 0 -Address ::
        $raw4 = New-RawClient $server.Port -Address 127.0.0.1
        $raw6 = New-RawClient $server.Port -Address ::1
        Send-RawBytes $raw4 "four`n"
        ConvertFrom-Bytes (Read-RawBytes $raw4 5) | Should -BeExactly "four`n"
        Send-RawBytes $raw6 "six`n"
        ConvertFrom-Bytes (Read-RawBytes $raw6 4) | Should -BeExactly "six`n"
        $c = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Send-TcpLine -Connection $c -Line 'client four'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('client four')
        $queued = @(Receive-TcpMessage -Server $server -Count 3 -Timeout $seconds10)
        ($queued.Text | Sort-Object) | Should -BeExactly @('client four', 'four', 'six')
    }

    It 'matches a 127.0.0.0/8 allow list against IPv4 peers of a dual-stack server' -Skip:(-not $dualStack) {
        $server = Start-TcpEchoServer -Port 0 -Address :: -AllowedRemoteAddress 127.0.0.0/8
        $raw4 = New-RawClient $server.Port -Address 127.0.0.1
        Send-RawBytes $raw4 "allowed`n"
        ConvertFrom-Bytes (Read-RawBytes $raw4 8) | Should -BeExactly "allowed`n"
        # ::1 is not in the IPv4 range: closed at once and counted.
        $raw6 = New-RawClient $server.Port -Address ::1
        Test-RawClosed $raw6 -Timeout 5 | Should -BeTrue
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionsRejected -eq 1 }
        $queued = @(Receive-TcpMessage -Server $server -Timeout ([TimeSpan]::FromMilliseconds(500)))
        $queued.Text | Should -BeExactly @('allowed')
    }
}

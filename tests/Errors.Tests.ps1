BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # Asserts that a captured run failed with one error whose id starts with $Id and that
    # carries a real category.
    function Assert-PSTcpError($Result, [string] $Id) {
        $Result.Errors.Count | Should -BeGreaterThan 0 -Because "a $Id error was expected"
        $err = $Result.Errors[0]
        $err.FullyQualifiedErrorId | Should -BeLike "$Id*"
        $err.CategoryInfo.Category | Should -Not -Be 'NotSpecified'
        $err.Exception.Message | Should -Not -BeNullOrEmpty
        $err
    }
}

Describe 'Client errors' {
    AfterEach { Clear-PSTcpState }

    It 'reports ConnectionRefused for a port nobody listens on' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured { Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port -Timeout ([TimeSpan]::FromSeconds(5)) }
        $null = Assert-PSTcpError $r 'ConnectionRefused'
        $r.Output | Should -HaveCount 0
        $r.Elapsed.TotalSeconds | Should -BeLessThan 5
    }

    It 'reports HostNotFound for a name that does not resolve' {
        $r = Invoke-Captured { Connect-TcpEndpoint -HostName nonexistent.invalid -Port 80 -Timeout ([TimeSpan]::FromSeconds(5)) }
        $null = Assert-PSTcpError $r 'HostNotFound'
        $r.Output | Should -HaveCount 0
    }

    It 'reports ConnectTimeout when the peer never answers' {
        $blackhole = New-BlackholeEndpoint
        try {
            $blackhole.Full | Should -BeTrue -Because 'the test needs a listener whose backlog is full'
            $r = Invoke-Captured { Connect-TcpEndpoint -HostName 127.0.0.1 -Port $blackhole.Port -Timeout ([TimeSpan]::FromSeconds(1)) }
            $null = Assert-PSTcpError $r 'ConnectTimeout'
            $r.Output | Should -HaveCount 0
            $r.Elapsed.TotalSeconds | Should -BeLessThan 5
        } finally {
            Remove-BlackholeEndpoint $blackhole
        }
    }

    It 'reports ConnectionClosed per piped line on a disconnected connection, without throwing' {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $c | Disconnect-TcpEndpoint
        $ev = $null
        $threw = $false
        try {
            'a', 'b', 'c' | Send-TcpLine -Connection $c -ErrorAction SilentlyContinue -ErrorVariable ev
        } catch { $threw = $true }
        $threw | Should -BeFalse -Because 'piped input gets non-terminating errors'
        @($ev).Count | Should -BeGreaterOrEqual 1
        foreach ($e in @($ev)) {
            $e.FullyQualifiedErrorId | Should -BeLike 'ConnectionClosed*'
            $e.CategoryInfo.Category | Should -Not -Be 'NotSpecified'
        }
    }

    It 'reports ConnectionClosed for -Line on a disconnected connection' {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        Disconnect-TcpEndpoint -Connection $c
        $r = Invoke-Captured { Send-TcpLine -Connection $c -Line 'late' }
        $null = Assert-PSTcpError $r 'ConnectionClosed'
    }

    It 'reports ConnectionRefused for a one-shot Send-TcpLine to a closed port' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured { Send-TcpLine -HostName 127.0.0.1 -Port $port -Line 'nobody' }
        $null = Assert-PSTcpError $r 'ConnectionRefused'
    }
}

Describe 'Server errors' {
    AfterEach { Clear-PSTcpState }

    It 'reports PortInUse and starts nothing when the port is taken' {
        $first = Start-TcpEchoServer -Port 0
        $before = @(Get-TcpServer).Count
        $r = Invoke-Captured { Start-TcpEchoServer -Port $first.Port }
        $err = Assert-PSTcpError $r 'PortInUse'
        $r.Output | Should -HaveCount 0
        @(Get-TcpServer | Where-Object State -eq 'Running').Count | Should -Be $before
        $first.State | Should -Be 'Running'
    }

    It 'reports PortInUse when another process-level listener holds the port' {
        $listener = New-RawListener
        try {
            $r = Invoke-Captured { Start-TcpEchoServer -Port $listener.LocalEndpoint.Port }
            $null = Assert-PSTcpError $r 'PortInUse'
        } finally { $listener.Stop() }
    }

    It 'reports AddressNotAvailable for an address not on this machine' {
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -Address 192.0.2.1 }
        $null = Assert-PSTcpError $r 'AddressNotAvailable'
        $r.Output | Should -HaveCount 0
    }

    It 'is silent for a wildcard name that matches no server' {
        $r = Invoke-Captured { Get-TcpServer -Name 'nosuch*' }
        $r.Output | Should -HaveCount 0
        $r.Errors | Should -HaveCount 0
    }

    It 'reports ServerNotFound for Stop-TcpServer -Name nosuch' {
        $r = Invoke-Captured { Stop-TcpServer -Name nosuch }
        $null = Assert-PSTcpError $r 'ServerNotFound'
    }

    It 'reports ServerNotFound for Get-TcpServer -Id 99999' {
        $r = Invoke-Captured { Get-TcpServer -Id 99999 }
        $null = Assert-PSTcpError $r 'ServerNotFound'
        $r.Output | Should -HaveCount 0
    }

    It 'reports ServerNotFound for Stop-TcpServer -Id 99999 and leaves other servers running' {
        $server = Start-TcpEchoServer -Port 0
        $r = Invoke-Captured { Stop-TcpServer -Id 99999 }
        $null = Assert-PSTcpError $r 'ServerNotFound'
        $server.State | Should -Be 'Running'
    }

    It 'reports ConnectionNotFound for Get-TcpConnection -Id 99999' {
        $r = Invoke-Captured { Get-TcpConnection -Id 99999 }
        $null = Assert-PSTcpError $r 'ConnectionNotFound'
        $r.Output | Should -HaveCount 0
    }
}

Describe 'Errors that say what went wrong' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        function Get-BindingError([scriptblock] $Run) {
            try { $null = & $Run; $null } catch { $_ }
        }
    }
    AfterAll { Clear-PSTcpState }

    It 'lets PowerShell name a mistyped parameter (Send-TcpLine -Conection $c x)' {
        $e = Get-BindingError { Send-TcpLine -Conection $c x }
        $e.FullyQualifiedErrorId | Should -BeLike 'NamedParameterNotFound,*'
        $e.Exception.Message | Should -Match "cannot be found that matches parameter name 'Conection'"
        $e.Exception.Message | Should -Not -Match 'No connection'
    }

    It 'does not call a line a connection name (Send-TcpLine "hello")' {
        $e = Get-BindingError { Send-TcpLine 'hello' }
        $e | Should -Not -BeNullOrEmpty
        $e.Exception.Message | Should -Not -Match "No connection is named 'hello'"
        $e.Exception.Message | Should -Match "Connection"
    }

    It 'still takes a connection by its name or id' {
        Send-TcpLine -Connection $c.Name 'by name'
        Send-TcpLine -Connection $c.Id 'by id'
        @(Receive-TcpMessage -Connection $c -Count 2 -Timeout 10).Text | Should -Be 'by name', 'by id'
    }

    It 'says "refused" without repeating the address it was given' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured { Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused*'
        $r.Errors[0].Exception.Message | Should -BeExactly "127.0.0.1:$port refused the connection."
    }

    It 'names the address a host name resolved to when it was refused' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured { Connect-TcpEndpoint -HostName localhost -Port $port }
        $r.Errors[-1].Exception.Message | Should -Match "^localhost:$port refused the connection \((127\.0\.0\.1|::1)\)\.$"
    }
}

Describe 'Send-TcpLine with lines longer than its buffer' {
    # A line is encoded in 64 KB pieces, never into one array of its encoded size: a
    # 720-million-character line used to fail with a raw ArgumentOutOfRangeException from
    # Encoding.GetMaxByteCount. Pieces must not split a character or a surrogate pair. The
    # peer is a raw socket, so the bytes are compared as sent.
    BeforeEach {
        $listener = New-RawListener
    }
    AfterEach {
        Close-RawClient $peer
        $listener.Stop()
        Clear-PSTcpState
    }

    It 'sends a <Chars>-character line of <Kind> exactly, in <Encoding.WebName>' -ForEach @(
        @{ Kind = 'ASCII'; Unit = 'abcdefgh'; Chars = 1MB; Encoding = [Text.UTF8Encoding]::new($false) }
        @{ Kind = 'three-byte characters'; Unit = [string][char]0x20AC; Chars = 300001; Encoding = [Text.UTF8Encoding]::new($false) }
        @{ Kind = 'surrogate pairs'; Unit = [char]::ConvertFromUtf32(0x1F600); Chars = 200002; Encoding = [Text.UTF8Encoding]::new($false) }
        @{ Kind = 'surrogate pairs'; Unit = [char]::ConvertFromUtf32(0x1F600); Chars = 100002; Encoding = [Text.Encoding]::Unicode }
        @{ Kind = 'surrogate pairs'; Unit = [char]::ConvertFromUtf32(0x1F600); Chars = 100002; Encoding = [Text.Encoding]::UTF32 }
    ) {
        $odd = 'x' + ($Unit * [math]::Ceiling($Chars / $Unit.Length))   # 'x' first: pieces cut pairs in two
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $listener.LocalEndpoint.Port -Encoding $Encoding
        $peer = Receive-RawConnection $listener
        $r = Invoke-Captured { Send-TcpLine -Connection $c -Line 'before', $odd, 'after' }
        $r.Errors | Should -HaveCount 0
        $expected = $Encoding.GetBytes("before`n$odd`nafter`n")
        $got = Read-RawBytes $peer $expected.Length -Timeout 20
        [System.Linq.Enumerable]::SequenceEqual($got, $expected) | Should -BeTrue
        $c.MessagesSent | Should -Be 3
        $c.BytesSent | Should -Be $expected.Length
    }
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # A port nothing listens on: bound a moment ago, then released.
    function Get-ClosedPort { Get-FreeTcpPort }
}

Describe 'Test-TcpEndpoint' {
    AfterEach { Clear-PSTcpState }

    It 'reports an open port as Open with the address that answered and a latency' {
        $server = Start-TcpEchoServer -Port 0
        $r = Test-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $r | Should -HaveCount 1
        $r.PSObject.TypeNames[0] | Should -Be 'PSTcp.TcpEndpointStatus'
        $r.HostName | Should -Be '127.0.0.1'
        $r.Address | Should -Be ([System.Net.IPAddress]::Loopback)
        $r.Port | Should -Be $server.Port
        $r.Open | Should -BeTrue
        $r.Status | Should -Be 'Open'
        $r.Error | Should -BeNullOrEmpty
        $r.Latency | Should -BeOfType [TimeSpan]
        $r.Latency.TotalSeconds | Should -BeLessThan 2
        # The probe closes its connection at once: the server sees it come and go.
        Wait-Until { $server.TotalConnections -eq 1 -and $server.ConnectionCount -eq 0 } -Timeout 5
    }

    It 'reports a port nobody listens on as Refused, fast' {
        $port = Get-ClosedPort
        $r = Invoke-Captured { Test-TcpEndpoint 127.0.0.1 $port -Timeout '00:00:05' }
        $r.Errors | Should -HaveCount 0
        $r.Output.Status | Should -Be 'Refused'
        $r.Output.Open | Should -BeFalse
        $r.Output.Error | Should -Not -BeNullOrEmpty
        $r.Elapsed.TotalSeconds | Should -BeLessThan 2
    }

    It 'reports a listener with a full backlog as TimedOut, at its timeout' {
        $blackhole = New-BlackholeEndpoint
        try {
            $blackhole.Full | Should -BeTrue -Because 'the test needs a listener whose backlog is full'
            $r = Invoke-Captured { Test-TcpEndpoint 127.0.0.1 $blackhole.Port -Timeout '00:00:01' }
            $r.Errors | Should -HaveCount 0
            $r.Output.Status | Should -Be 'TimedOut'
            $r.Output.Open | Should -BeFalse
            $r.Output.Latency.TotalSeconds | Should -BeGreaterOrEqual 0.9
            $r.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
            $r.Elapsed.TotalSeconds | Should -BeLessThan 2
        } finally {
            Remove-BlackholeEndpoint $blackhole
        }
    }

    It 'reports a name that does not resolve as HostNotFound, within its timeout' {
        $r = Invoke-Captured { Test-TcpEndpoint nonexistent.invalid 80 -Timeout '00:00:03' }
        $r.Errors | Should -HaveCount 0
        $r.Output.Status | Should -Be 'HostNotFound'
        $r.Output[0].Address | Should -BeNullOrEmpty
        $r.Output.Open | Should -BeFalse
        $r.Elapsed.TotalSeconds | Should -BeLessThan 3.5
    }

    It 'tries hosts x ports concurrently and writes them in input order' {
        $server = Start-TcpEchoServer -Port 0
        $closed = Get-ClosedPort
        $blackhole = New-BlackholeEndpoint
        try {
            $blackhole.Full | Should -BeTrue
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $r = Test-TcpEndpoint -HostName 127.0.0.1, nonexistent.invalid -Port $blackhole.Port, $server.Port, $closed, $blackhole.Port -Timeout '00:00:01'
            $watch.Stop()
            ($r | ForEach-Object { "$($_.HostName):$($_.Port)=$($_.Status)" }) | Should -Be @(
                "127.0.0.1:$($blackhole.Port)=TimedOut"
                "127.0.0.1:$($server.Port)=Open"
                "127.0.0.1:$closed=Refused"
                "127.0.0.1:$($blackhole.Port)=TimedOut"
                "nonexistent.invalid:$($blackhole.Port)=HostNotFound"
                "nonexistent.invalid:$($server.Port)=HostNotFound"
                "nonexistent.invalid:$closed=HostNotFound"
                "nonexistent.invalid:$($blackhole.Port)=HostNotFound"
            )
            # Two 1 s timeouts in one run: concurrent, they take about 1 s, not 2.
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 1.9
        } finally {
            Remove-BlackholeEndpoint $blackhole
        }
    }

    It 'runs at most -ThrottleLimit attempts at a time, each with its own full timeout' {
        $blackhole = New-BlackholeEndpoint
        try {
            $blackhole.Full | Should -BeTrue
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $r = Test-TcpEndpoint 127.0.0.1 $blackhole.Port, $blackhole.Port -Timeout '00:00:00.6' -ThrottleLimit 1
            $watch.Stop()
            $r.Status | Should -Be @('TimedOut', 'TimedOut')
            # One at a time: the second starts only when the first timed out, and still gets its 0.6 s.
            $r[1].Latency.TotalSeconds | Should -BeGreaterOrEqual 0.55
            $watch.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 1.15
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 3
        } finally {
            Remove-BlackholeEndpoint $blackhole
        }
    }

    It 'writes bools with -Quiet, in input order' {
        $server = Start-TcpEchoServer -Port 0
        $closed = Get-ClosedPort
        $r = Test-TcpEndpoint 127.0.0.1 $closed, $server.Port, $closed -Quiet
        $r | Should -HaveCount 3
        $r | ForEach-Object { $_ | Should -BeOfType [bool] }
        $r | Should -Be @($false, $true, $false)
    }

    It 'takes host names from the pipeline, also as a ComputerName property' {
        $server = Start-TcpEchoServer -Port 0
        $r = @('127.0.0.1', [pscustomobject]@{ ComputerName = 'localhost' }) | Test-TcpEndpoint -Port $server.Port
        $r.HostName | Should -Be @('127.0.0.1', 'localhost')
        $r.Status | Should -Be @('Open', 'Open')
    }

    It 'shows a table of HostName, Address, Port, Status, Latency and Error' {
        $port = Get-ClosedPort
        $text = Test-TcpEndpoint 127.0.0.1 $port | Out-String -Width 160
        $header = ($text -split "`r?`n" | Where-Object { $_ -match '\S' })[0]
        $header | Should -Match '^HostName\s+Address\s+Port\s+Status\s+Latency\(ms\)\s+Error'
        $text | Should -Match "127\.0\.0\.1\s+127\.0\.0\.1\s+$port\s+Refused\s+\d+\.\d"
    }

    It 'rejects a timeout that is not positive' {
        $r = Invoke-Captured { Test-TcpEndpoint 127.0.0.1 80 -Timeout 0 }
        $r.Errors | Should -HaveCount 1
        $r.Output | Should -HaveCount 0
    }
}

# What ncat users reach for: connect retries (--wait/-i style), allow lists (--allow), and
# half-close (--send-only / shutdown after stdin ends).

BeforeDiscovery {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $ipv6 = Test-IPv6Loopback
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $modulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").ProviderPath
    $seconds10 = [TimeSpan]::FromSeconds(10)

    function Get-LiveServer { Get-TcpServer -Id $server.Id }

    # Splits a run's output into verbose messages and the rest.
    function Split-Verbose([object[]] $Records) {
        [pscustomobject]@{
            Verbose = @($Records | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
            Errors  = @($Records | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
            Output  = @($Records | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] -and $_ -isnot [System.Management.Automation.ErrorRecord] })
        }
    }
}

Describe 'Connect retries' {
    BeforeEach { $background = $null }
    AfterEach {
        Stop-BackgroundScript $background
        Clear-PSTcpState
    }

    It 'Connect-TcpEndpoint -RetryCount 20 started before its server connects once the server is up, one attempt message per try' {
        # The one place a port is chosen before its server exists: a port that was free a
        # moment ago (a server can't be given a port before it starts).
        $port = Get-FreeTcpPort
        $background = Start-BackgroundScript -ArgumentList $modulePath, $port {
            param($ModulePath, $Port)
            Import-Module $ModulePath
            Connect-TcpEndpoint -HostName 127.0.0.1 -Port $Port -RetryCount 20 -RetryInterval 00:00:00.2 -Verbose 4>&1 |
                ForEach-Object {
                    if ($_ -is [System.Management.Automation.VerboseRecord]) { "verbose: $($_.Message)" }
                    else { "connected: $($_.State) $($_.RemoteEndPoint.Port)"; $_ | Disconnect-TcpEndpoint }
                }
        }
        Wait-Until { @(Get-BackgroundOutput $background | Where-Object { $_ -like 'verbose: Attempt 2 failed*' }).Count -ge 1 } -Because 'at least two refused attempts before the server starts'
        $server = Start-TcpEchoServer -Port $port
        $output = Wait-BackgroundScript $background -Timeout 15
        $background = $null

        $output | Where-Object { $_ -like 'connected:*' } | Should -Be "connected: Open $port"
        $tries = @($output | Where-Object { $_ -match '^verbose: .*attempt (\d+) of 21\b' } | ForEach-Object { [int]($_ -replace '^.*attempt (\d+) of 21\b.*$', '$1') })
        $failures = @($output | Where-Object { $_ -like 'verbose: Attempt * failed*' })
        $tries.Count | Should -BeGreaterOrEqual 3
        $tries.Count | Should -BeLessThan 21
        $tries | Should -Be @(1..$tries.Count) -Because 'one attempt message per try, numbered'
        $failures.Count | Should -Be ($tries.Count - 1)
        $failures | ForEach-Object { $_ | Should -BeLike '*ConnectionRefused*' }
        Wait-Until { (Get-LiveServer).TotalConnections -eq 1 }
    }

    It 'fails with ConnectionRefused after 3 attempts with -RetryCount 2 and no server' {
        $port = Get-FreeTcpPort
        $records = & {
            try { Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port -RetryCount 2 -RetryInterval 00:00:00.1 -Verbose -ErrorAction Stop }
            catch { $_ }
        } 4>&1
        $r = Split-Verbose $records
        $r.Output | Should -HaveCount 0
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused*'
        @($r.Verbose | Where-Object { $_ -match 'attempt \d+ of 3\b' }) | Should -HaveCount 3
        @($r.Verbose | Where-Object { $_ -like 'Attempt * failed*' }) | Should -HaveCount 2
    }

    It 'one-shot Send-TcpLine -RetryCount fails with ConnectionRefused after 3 attempts with no server' {
        $port = Get-FreeTcpPort
        $records = & {
            try { Send-TcpLine -HostName 127.0.0.1 -Port $port -Line 'x' -RetryCount 2 -RetryInterval 00:00:00.1 -Verbose -ErrorAction Stop }
            catch { $_ }
        } 4>&1
        $r = Split-Verbose $records
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused*'
        @($r.Verbose | Where-Object { $_ -match 'attempt \d+ of 3\b' }) | Should -HaveCount 3
    }

    It 'one-shot Send-TcpLine -RetryCount started before its server delivers once the server is up' {
        $port = Get-FreeTcpPort
        $background = Start-BackgroundScript -ArgumentList $modulePath, $port {
            param($ModulePath, $Port)
            Import-Module $ModulePath
            'late 1', 'late 2' | Send-TcpLine -HostName 127.0.0.1 -Port $Port -RetryCount 20 -RetryInterval 00:00:00.2 -Verbose 4>&1 |
                ForEach-Object { "verbose: $($_.Message)" }
            'sent'
        }
        Wait-Until { @(Get-BackgroundOutput $background | Where-Object { $_ -like 'verbose: Attempt 1 failed*' }).Count -ge 1 } -Because 'a refused attempt before the server starts'
        $server = Start-TcpEchoServer -Port $port
        $output = Wait-BackgroundScript $background -Timeout 15
        $background = $null
        $output | Should -Contain 'sent'
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $messages.Text | Should -BeExactly @('late 1', 'late 2')
    }
}

Describe 'Allow lists' {
    BeforeEach { $raw = $null }
    AfterEach {
        Close-RawClient $raw
        Clear-PSTcpState
    }

    It 'closes a 127.0.0.1 client at once when only 10.0.0.0/8 is allowed, and queues nothing' {
        $server = Start-TcpEchoServer -Port 0 -AllowedRemoteAddress 10.0.0.0/8
        $raw = New-RawClient $server.Port
        try { Send-RawBytes $raw "let me in`n" } catch { }
        Test-RawClosed $raw -Timeout 5 | Should -BeTrue -Because 'a peer outside the list is closed at once'
        Wait-Until { (Get-LiveServer).ConnectionsRejected -eq 1 }
        $live = Get-LiveServer
        $live.ConnectionsRejected | Should -Be 1
        $live.QueueLength | Should -Be 0
        $live.MessagesReceived | Should -Be 0
        $live.ConnectionCount | Should -Be 0
        $live.State | Should -Be 'Running'
    }

    It 'allows a 127.0.0.1 client with the CIDR range 127.0.0.0/8' {
        $server = Start-TcpEchoServer -Port 0 -AllowedRemoteAddress 10.0.0.0/8, 127.0.0.0/8
        $raw = New-RawClient $server.Port
        Send-RawBytes $raw "in range`n"
        ConvertFrom-Bytes (Read-RawBytes $raw 9) | Should -BeExactly "in range`n"
        (Get-LiveServer).ConnectionsRejected | Should -Be 0
    }

    It 'allows a ::1 client with the address ::1' -Skip:(-not $ipv6) {
        $server = Start-TcpEchoServer -Port 0 -Address ::1 -AllowedRemoteAddress '::1'
        $c = Connect-TcpEndpoint ::1 $server.Port
        Send-TcpLine -Connection $c -Line 'six in'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('six in')
        (Get-LiveServer).ConnectionsRejected | Should -Be 0
    }

    It 'rejects an invalid range <_> with a terminating error and starts nothing' -ForEach 'nonsense/99', '10.0.0.0/33', 'not-an-address' {
        $before = @(Get-TcpServer).Count
        { Start-TcpEchoServer -Port 0 -AllowedRemoteAddress $_ -ErrorAction Continue } | Should -Throw
        @(Get-TcpServer).Count | Should -Be $before
    }
}

Describe 'Half-close with Disconnect-TcpEndpoint -SendOnly' {
    AfterEach { Clear-PSTcpState }

    It 'keeps receiving every echo, and Receive-TcpMessage ends when the server closes' {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $lines = 1..200 | ForEach-Object { "request $_" }
        $lines | Send-TcpLine -Connection $c
        $c | Disconnect-TcpEndpoint -SendOnly
        "$($c.State)" | Should -BeIn @('HalfClosed', 'Closing', 'Closed')
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # The timeout is only a safety net: the receive must end when the peer closes.
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Timeout ([TimeSpan]::FromSeconds(20)) }
        $watch.Stop()
        $r.Errors | Should -HaveCount 0
        $r.Output.Text | Should -BeExactly $lines
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'the receive ends at the end of the stream, not at its timeout'
        Wait-Until { "$($c.State)" -eq 'Closed' }
        $queued = @(Receive-TcpMessage -Server $server -Count 200 -Timeout $seconds10)
        $queued.Text | Should -BeExactly $lines
    }

    It 'sends nothing after -SendOnly' {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $c | Disconnect-TcpEndpoint -SendOnly
        $ev = $null
        Send-TcpLine -Connection $c -Line 'too late' -ErrorAction SilentlyContinue -ErrorVariable ev
        @($ev).Count | Should -BeGreaterThan 0
        $ev[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionClosed*'
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 }
        (Get-LiveServer).MessagesReceived | Should -Be 0
    }
}

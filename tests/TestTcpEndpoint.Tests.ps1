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

    It 'keeps its table within 80 columns, Error blank where it would repeat Status' {
        $server = Start-TcpEchoServer -Port 0
        $closed = Get-ClosedPort
        $text = Test-TcpEndpoint 127.0.0.1 $server.Port, $closed | Out-String -Width 80
        $lines = $text -split "`r?`n" | Where-Object { $_ -match '\S' } | ForEach-Object { $_.TrimEnd() }
        $lines | Should -HaveCount 4
        $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        $lines[0] | Should -Match '^HostName\s+Address\s+Port\s+Status\s+Latency\(ms\)\s+Error$'
        $lines[2] | Should -Match "^127\.0\.0\.1\s+127\.0\.0\.1\s+$($server.Port)\s+Open\s+\d+\.\d$"
        # "Connection refused" only says Refused again: the column stays blank, the property keeps it.
        $lines[3] | Should -Match "^127\.0\.0\.1\s+127\.0\.0\.1\s+$closed\s+Refused\s+\d+\.\d$"
        (Test-TcpEndpoint 127.0.0.1 $closed).Error | Should -Not -BeNullOrEmpty
    }

    It 'takes host:port and tcp://host:port, each on its own port, without -Port' {
        $server = Start-TcpEchoServer -Port 0
        $closed = Get-ClosedPort
        $r = Test-TcpEndpoint "127.0.0.1:$($server.Port)", "tcp://127.0.0.1:$closed", "tcp://localhost:$($server.Port)/"
        ($r | ForEach-Object { "$($_.HostName):$($_.Port)=$($_.Status)" }) | Should -Be @(
            "127.0.0.1:$($server.Port)=Open"
            "127.0.0.1:$closed=Refused"
            "localhost:$($server.Port)=Open"
        )
    }

    It 'takes [v6]:port, and tries a host with its own port only on that port' {
        if (-not [System.Net.Sockets.Socket]::OSSupportsIPv6) { Set-ItResult -Skipped -Because 'this machine has no IPv6'; return }
        $server = Start-TcpEchoServer -Address ::1 -Port 0
        $closed = Get-ClosedPort
        $r = Test-TcpEndpoint "[::1]:$($server.Port)", '127.0.0.1' -Port $closed
        ($r | ForEach-Object { "$($_.HostName)|$($_.Address)|$($_.Port)=$($_.Status)" }) | Should -Be @(
            "::1|::1|$($server.Port)=Open"
            "127.0.0.1|127.0.0.1|$closed=Refused"
        )
    }

    It 'refuses a host that is no host, or names no port without -Port, and still tries the others' {
        $server = Start-TcpEchoServer -Port 0
        $r = Invoke-Captured { Test-TcpEndpoint 'host:0', 'justahost', "127.0.0.1:$($server.Port)", '[::1' }
        $r.Errors | Should -HaveCount 3
        $r.Errors | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument*' }
        "$($r.Errors[1])" | Should -BeLike '*names no port*-Port*host:port*'
        $r.Output | Should -HaveCount 1
        $r.Output.Status | Should -Be 'Open'
    }

    It 'rejects a timeout that is not positive' {
        $r = Invoke-Captured { Test-TcpEndpoint 127.0.0.1 80 -Timeout 0 }
        $r.Errors | Should -HaveCount 1
        $r.Output | Should -HaveCount 0
    }
}

# Routes that make 10.98.x.0/24 unreachable, blackholed, prohibited and thrown (no route), in a
# network namespace the test makes itself (unshare -rn: a user namespace maps us to root there,
# so no privilege is needed where unprivileged user namespaces are allowed). A child pwsh inside
# it runs the probes and the connects and writes what it saw as JSON.
Describe 'Test-TcpEndpoint and Connect-TcpEndpoint behind routes that go nowhere' {
    BeforeAll {
        . (Join-Path $PSScriptRoot '../build/Pwsh.ps1')
        $script:NamespaceSkip = $null
        $unshare = Get-Command unshare -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        $ip = Get-Command ip -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $IsLinux) { $script:NamespaceSkip = 'network namespaces are Linux only' }
        elseif (-not $unshare -or -not $ip) { $script:NamespaceSkip = 'unshare or ip (util-linux, iproute2) is not installed' }
        else {
            $probe = & $unshare.Source -rn $ip.Source route add unreachable 10.98.0.0/24 2>&1
            if ($LASTEXITCODE -ne 0) { $script:NamespaceSkip = "this machine can't make a network namespace without privilege (unshare -rn: $probe)" }
        }

        if (-not $script:NamespaceSkip) {
            $module = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").Path
            $child = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-routes-$([guid]::NewGuid().ToString('N')).ps1"
            Set-Content -LiteralPath $child -Value @"
`$ErrorActionPreference = 'Stop'
Import-Module '$module'
`$probes = Test-TcpEndpoint 10.98.0.5, 10.98.1.5, 10.98.2.5, 10.98.3.5, 'tcp://10.98.0.5:443' -Port 80 -Timeout 5
`$table = `$probes | Out-String -Width 80
`$connects = foreach (`$h in '10.98.0.5', '10.98.1.5', '10.98.2.5', '10.98.3.5') {
    try { `$null = Connect-TcpEndpoint `$h 80 -Timeout 5; 'connected' }
    catch { [pscustomobject]@{ Id = `$_.FullyQualifiedErrorId.Split(',')[0]; Message = "`$_" } }
}
[pscustomobject]@{
    Probes = @(`$probes | ForEach-Object { [pscustomobject]@{ HostName = `$_.HostName; Port = `$_.Port; Status = "`$(`$_.Status)"; Open = `$_.Open; Error = `$_.Error; Ms = `$_.Latency.TotalMilliseconds } })
    Table = `$table
    Connects = @(`$connects)
} | ConvertTo-Json -Depth 4
"@
            $routes = 'ip link set lo up && ip route add unreachable 10.98.0.0/24 && ip route add blackhole 10.98.1.0/24 && ' +
                'ip route add prohibit 10.98.2.0/24 && ip route add throw 10.98.3.0/24 && exec "$@"'
            $pwsh = @(Get-PwshCommand)
            $info = [System.Diagnostics.ProcessStartInfo]::new($unshare.Source)
            foreach ($a in @('-rn', 'sh', '-c', $routes, 'sh') + $pwsh + @('-NoProfile', '-NonInteractive', '-File', $child)) { $info.ArgumentList.Add($a) }
            $info.RedirectStandardOutput = $true
            $info.RedirectStandardError = $true
            $process = [System.Diagnostics.Process]::Start($info)
            $stderr = $process.StandardError.ReadToEndAsync()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            if (-not $process.WaitForExit(90000)) { $process.Kill($true); throw 'The child pwsh in the namespace did not finish within 90 s.' }
            $process.WaitForExit()
            Remove-Item -LiteralPath $child -ErrorAction SilentlyContinue
            if ($process.ExitCode -ne 0) { throw "The child pwsh in the namespace failed ($($process.ExitCode)): $($stderr.Result)" }
            $script:Seen = $stdout.Result | ConvertFrom-Json
        }
    }

    BeforeEach {
        if ($script:NamespaceSkip) { Set-ItResult -Skipped -Because $script:NamespaceSkip }
    }

    It 'says Unreachable for an unreachable route, at once, not Refused' {
        $r = $script:Seen.Probes[0]
        $r.HostName | Should -Be '10.98.0.5'
        $r.Status | Should -Be 'Unreachable'
        $r.Open | Should -BeFalse
        $r.Error | Should -Be 'No route to host'
        $r.Ms | Should -BeLessThan 4000 -Because 'the kernel answers at once; only a timeout would take 5 s'
    }

    It 'says Unreachable for a blackhole route and for no route at all' {
        $script:Seen.Probes[1].Status | Should -Be 'Unreachable'
        $script:Seen.Probes[1].Error | Should -BeLike 'No usable route*blackhole*'
        $script:Seen.Probes[3].Status | Should -Be 'Unreachable'
        $script:Seen.Probes[3].Error | Should -Be 'Network is unreachable'
    }

    It 'says Filtered for a prohibit route' {
        $script:Seen.Probes[2].Status | Should -Be 'Filtered'
        $script:Seen.Probes[2].Error | Should -Be 'Permission denied'
    }

    It 'tells the same through the URI form, on its own port' {
        $r = $script:Seen.Probes[4]
        "$($r.HostName):$($r.Port)=$($r.Status)" | Should -Be '10.98.0.5:443=Unreachable'
    }

    It 'shows the statuses and why in an 80-column table' {
        $lines = $script:Seen.Table -split "`r?`n" | Where-Object { $_ -match '\S' } | ForEach-Object { $_.TrimEnd() }
        $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        ($lines -match '^10\.98\.0\.5\s+10\.98\.0\.5\s+80\s+Unreachable\s+[\d.]+\s+No route to host$') | Should -HaveCount 1
        ($lines -match '^10\.98\.2\.5 .*\sFiltered\s') | Should -HaveCount 1
    }

    It 'makes Connect-TcpEndpoint raise HostUnreachable or ConnectionFiltered, not ConnectionRefused' {
        $c = $script:Seen.Connects
        $c.Id | Should -Be @('HostUnreachable', 'HostUnreachable', 'ConnectionFiltered', 'HostUnreachable')
        $c[0].Message | Should -BeLike '*10.98.0.5:80*no route*'
        $c[2].Message | Should -BeLike '*firewall*prohibit route*'
    }
}

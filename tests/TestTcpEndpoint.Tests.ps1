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

# -Proxy: real microsocks (SOCKS5, with and without a login) and tinyproxy (HTTP CONNECT, with and
# without BasicAuth), each started here on a free loopback port; plus a scripted proxy (python3)
# that answers every request with the reply code it is asked for, to pin each code's Status.
Describe 'Test-TcpEndpoint -Proxy' {
    BeforeDiscovery {
        $has = { param($name) $null -ne (Get-Command $name -CommandType Application -ErrorAction SilentlyContinue) }
        $script:NoMicrosocks = -not (& $has 'microsocks')
        $script:NoTinyproxy = -not (& $has 'tinyproxy')
        $script:NoPython = -not (& $has 'python3')
    }
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0
        $closed = Get-FreeTcpPort
        $nobody = Get-FreeTcpPort
    }
    AfterAll { Clear-PSTcpState }

    Context 'microsocks' -Skip:$NoMicrosocks {
        BeforeAll {
            $openPort = Get-FreeTcpPort
            $open = Start-TestProgram microsocks @('-i', '127.0.0.1', '-p', "$openPort") -Port $openPort
            $lockedPort = Get-FreeTcpPort
            $locked = Start-TestProgram microsocks @('-i', '127.0.0.1', '-p', "$lockedPort", '-u', 'user', '-P', 'pass') -Port $lockedPort
        }
        AfterAll {
            Stop-TestProgram $open
            Stop-TestProgram $locked
        }

        It 'says Open for a listening port and Refused for a closed one, the name resolved by the proxy' {
            $r = Invoke-Captured { Test-TcpEndpoint localhost -Port $server.Port, $closed -Proxy "socks5://127.0.0.1:$openPort" -Timeout 10 }
            $r.Errors | Should -HaveCount 0
            $r.Output | Should -HaveCount 2
            $r.Output[0].Status | Should -Be 'Open'
            $r.Output[0].Open | Should -BeTrue
            $r.Output[0].Error | Should -BeNullOrEmpty
            $r.Output[0].HostName | Should -Be 'localhost'
            $r.Output[0].Proxy | Should -Be "socks5://127.0.0.1:$openPort"
            $r.Output[0].Address | Should -BeNullOrEmpty -Because 'the proxy resolved the name'
            $r.Output[1].Status | Should -Be 'Refused'
            $r.Output[1].Error | Should -BeLike "The proxy socks5://127.0.0.1:$openPort could not connect to localhost:${closed}: connection refused*"
        }

        It 'keeps the address of a host given as one, and writes bools with -Quiet in order' {
            (Test-TcpEndpoint 127.0.0.1 $server.Port -Proxy "socks5://127.0.0.1:$openPort" -Timeout 10).Address | Should -Be ([System.Net.IPAddress]::Loopback)
            Test-TcpEndpoint 127.0.0.1 -Port $closed, $server.Port -Proxy "socks5://127.0.0.1:$openPort" -Timeout 10 -Quiet | Should -Be @($false, $true)
        }

        It 'logs in with credentials in the URI and with -ProxyCredential' {
            (Test-TcpEndpoint localhost $server.Port -Proxy "socks5://user:pass@127.0.0.1:$lockedPort" -Timeout 10).Status | Should -Be 'Open'
            $credential = [pscredential]::new('user', (ConvertTo-SecureString 'pass' -AsPlainText -Force))
            $r = Test-TcpEndpoint localhost -Port $server.Port, $closed -Proxy "socks5://127.0.0.1:$lockedPort" -ProxyCredential $credential -Timeout 10
            $r.Status | Should -Be @('Open', 'Refused')
        }

        It 'says the proxy refused <Case>, as Refused' -ForEach @(
            @{ Case = 'a wrong password'; Proxy = 'socks5://user:wrong@127.0.0.1:{0}'; Error = '*refused the user name and password*' }
            @{ Case = 'a missing login'; Proxy = 'socks5://127.0.0.1:{0}'; Error = '*requires a user name and password*' }
        ) {
            $r = Invoke-Captured { Test-TcpEndpoint localhost $server.Port -Proxy ($Proxy -f $lockedPort) -Timeout 10 }
            $r.Errors | Should -HaveCount 0
            $r.Output.Status | Should -Be 'Refused'
            $r.Output.Error | Should -BeLike "The proxy socks5://127.0.0.1:$lockedPort $Error"
            $r.Output.Error | Should -Not -BeLike '*wrong*' -Because 'the password is not shown'
        }
    }

    Context 'tinyproxy' -Skip:$NoTinyproxy {
        BeforeAll {
            $forbidden = Get-FreeTcpPort
            $start = {
                param([string[]] $Extra)
                $port = Get-FreeTcpPort
                $config = Join-Path $TestDrive "tinyproxy-$port.conf"
                Set-Content -LiteralPath $config -Value (@("Port $port", 'Listen 127.0.0.1', 'Allow 127.0.0.1', "ConnectPort $($server.Port)", "ConnectPort $closed",
                    'MaxClients 20', 'LogLevel Error', 'Timeout 30') + $Extra)
                [pscustomobject]@{ Port = $port; Program = Start-TestProgram tinyproxy @('-d', '-c', $config) -Port $port }
            }
            $plain = & $start @()
            $locked = & $start @('BasicAuth user pass')
        }
        AfterAll {
            Stop-TestProgram $plain.Program
            Stop-TestProgram $locked.Program
        }

        It 'says Open, Refused with the proxy''s status, and Filtered for a port its rules forbid' {
            $r = Test-TcpEndpoint localhost -Port $server.Port, $closed, $forbidden -Proxy "http://127.0.0.1:$($plain.Port)" -Timeout 10
            $r.Status | Should -Be @('Open', 'Refused', 'Filtered')
            $r[1].Error | Should -BeLike "The proxy http://127.0.0.1:$($plain.Port) refused CONNECT localhost:${closed}: HTTP/1.* 5*"
            $r[2].Error | Should -BeLike '*403*'
        }

        It 'logs in with Basic auth, and says Refused for a wrong password' {
            (Test-TcpEndpoint localhost $server.Port -Proxy "http://user:pass@127.0.0.1:$($locked.Port)" -Timeout 10).Status | Should -Be 'Open'
            $r = Test-TcpEndpoint localhost $server.Port -Proxy "http://user:wrong@127.0.0.1:$($locked.Port)" -Timeout 10
            $r.Status | Should -Be 'Refused'
            $r.Error | Should -BeLike "The proxy http://127.0.0.1:$($locked.Port) refused the user name and password for 'user' (HTTP/1.? 40[17] *"
        }
    }

    Context 'a proxy that answers each code' -Skip:$NoPython {
        BeforeAll {
            # Answers every request with the code it is asked for as the target port: SOCKS5's
            # reply code, or the HTTP status of a CONNECT.
            $script = Join-Path $TestDrive 'coded-proxy.py'
            Set-Content -LiteralPath $script -Value @'
import socket, sys, threading
def exact(c, n):
    data = b''
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk: raise EOFError()
        data += chunk
    return data
def serve(c, http):
    try:
        if http:
            data = b''
            while b'\r\n\r\n' not in data:
                chunk = c.recv(1024)
                if not chunk: return
                data += chunk
            code = int(data.split(b' ')[1].rsplit(b':', 1)[1])
            c.sendall(b'HTTP/1.1 %d Coded\r\n\r\n' % code)
        else:
            exact(c, 3)
            c.sendall(b'\x05\x00')
            request = exact(c, 10)
            c.sendall(bytes([5, request[9], 0, 1, 0, 0, 0, 0, 0, 0]))
    except Exception:
        pass
    finally:
        c.close()
def run(port, http):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', port))
    listener.listen(64)
    while True:
        c, _ = listener.accept()
        threading.Thread(target=serve, args=(c, http), daemon=True).start()
threading.Thread(target=run, args=(int(sys.argv[2]), True), daemon=True).start()
run(int(sys.argv[1]), False)
'@
            $socksPort = Get-FreeTcpPort
            $httpPort = Get-FreeTcpPort
            $coded = Start-TestProgram python3 @($script, "$socksPort", "$httpPort") -Ready {
                foreach ($p in $socksPort, $httpPort) { $probe = New-RawClient $p -Timeout 1; $probe.Dispose() }
                $true
            }.GetNewClosure()
        }
        AfterAll { Stop-TestProgram $coded }

        It 'maps SOCKS5 reply <Code> to <Status>' -ForEach @(
            @{ Code = 1; Status = 'Refused'; Words = 'general failure' }
            @{ Code = 2; Status = 'Filtered'; Words = 'not allowed by its rules' }
            @{ Code = 3; Status = 'Unreachable'; Words = 'network unreachable' }
            @{ Code = 4; Status = 'Unreachable'; Words = 'host unreachable' }
            @{ Code = 5; Status = 'Refused'; Words = 'connection refused' }
            @{ Code = 6; Status = 'TimedOut'; Words = 'TTL expired' }
        ) {
            $r = Test-TcpEndpoint 127.0.0.1 $Code -Proxy "socks5://127.0.0.1:$socksPort" -Timeout 10
            $r.Status | Should -Be $Status
            $r.Error | Should -BeLike "*could not connect to 127.0.0.1:${Code}: $Words*"
        }

        It 'maps HTTP status <Code> to <Status>' -ForEach @(
            @{ Code = 200; Status = 'Open' }
            @{ Code = 403; Status = 'Filtered' }
            @{ Code = 502; Status = 'Refused' }
            @{ Code = 503; Status = 'Refused' }
            @{ Code = 504; Status = 'TimedOut' }
        ) {
            $r = Test-TcpEndpoint 127.0.0.1 $Code -Proxy "http://127.0.0.1:$httpPort" -Timeout 10
            $r.Status | Should -Be $Status
            if ($Code -ne 200) { $r.Error | Should -BeLike "*refused CONNECT 127.0.0.1:${Code}: HTTP/1.1 $Code Coded*" }
        }
    }

    It 'says a proxy nobody listens on is Refused, naming the proxy' {
        $r = Test-TcpEndpoint localhost $server.Port -Proxy "socks5://127.0.0.1:$nobody" -Timeout 10
        $r.Status | Should -Be 'Refused'
        $r.Error | Should -BeLike "Can't reach the proxy socks5://127.0.0.1:${nobody}: *"
        $r.Proxy | Should -Be "socks5://127.0.0.1:$nobody"
    }

    It 'says a proxy that never answers is TimedOut, at the timeout' {
        # Accepts and reads, answers nothing (SOCKS5's greeting has no line end).
        $silent = Start-TcpServer -Port 0 -ScriptBlock { param($Message) }
        $r = Invoke-Captured { Test-TcpEndpoint localhost $server.Port -Proxy "socks5://127.0.0.1:$($silent.Port)" -Timeout 0.5 }
        $r.Output.Status | Should -Be 'TimedOut'
        $r.Output.Error | Should -BeLike "The proxy socks5://127.0.0.1:$($silent.Port) did not answer within 0.5 s*"
        $r.Elapsed.TotalSeconds | Should -BeLessThan 5
    }

    It 'refuses an unknown scheme, and -ProxyCredential without -Proxy, with InvalidArgument' {
        $r = Invoke-Captured { Test-TcpEndpoint localhost $server.Port -Proxy 'ftp://127.0.0.1:21' }
        $r.Output | Should -HaveCount 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $credential = [pscredential]::new('user', (ConvertTo-SecureString 'pass' -AsPlainText -Force))
        $r = Invoke-Captured { Test-TcpEndpoint localhost $server.Port -ProxyCredential $credential }
        $r.Output | Should -HaveCount 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }
}

# -UnixSocket: a PSTcp server, redis-server --unixsocket, a socket file nobody listens on (python3
# leaves one, as a killed process would), and a path with no file.
Describe 'Test-TcpEndpoint -UnixSocket' -Skip:$IsWindows {
    BeforeDiscovery {
        $script:NoRedis = $null -eq (Get-Command redis-server -CommandType Application -ErrorAction SilentlyContinue)
        $script:NoPython = $null -eq (Get-Command python3 -CommandType Application -ErrorAction SilentlyContinue)
    }
    BeforeAll {
        # Short: a Unix socket's path is at most 107 bytes, and TestDrive can be deep.
        $socketDir = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $null = New-Item -ItemType Directory -Path $socketDir
    }
    AfterAll {
        Clear-PSTcpState
        Remove-Item -LiteralPath $socketDir -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'says Open for a PSTcp server, HostNotFound for no such file; HostName the path, Port 0' {
        $path = Join-Path $socketDir 'echo.sock'
        $server = Start-TcpEchoServer -UnixSocket $path
        $missing = Join-Path $socketDir 'missing.sock'
        $r = Invoke-Captured { Test-TcpEndpoint -UnixSocket $path, $missing -Timeout 10 }
        $r.Errors | Should -HaveCount 0
        $r.Output | Should -HaveCount 2
        $r.Output[0].Status | Should -Be 'Open'
        $r.Output[0].HostName | Should -Be $path
        $r.Output[0].Port | Should -Be 0
        $r.Output[0].Address | Should -BeNullOrEmpty
        $r.Output[0].Error | Should -BeNullOrEmpty
        $r.Output[1].Status | Should -Be 'HostNotFound'
        $r.Output[1].Error | Should -Be "No such file: $missing"
        Wait-Until { $server.TotalConnections -eq 1 -and $server.ConnectionCount -eq 0 } -Timeout 5
        Test-TcpEndpoint -UnixSocket $path, $missing -Quiet | Should -Be @($true, $false)
    }

    It 'resolves a relative path against the current location, and shows the file''s name in the table' {
        $path = Join-Path $socketDir 'relative-with-a-long-name.sock'
        $null = Start-TcpEchoServer -UnixSocket $path
        Push-Location $socketDir
        try {
            $r = Test-TcpEndpoint -UnixSocket 'relative-with-a-long-name.sock' -Timeout 10
        } finally { Pop-Location }
        $r.HostName | Should -Be $path
        $r.Status | Should -Be 'Open'
        $lines = ($r | Out-String -Width 80) -split "`r?`n" | Where-Object { $_ -match '\S' } | ForEach-Object { $_.TrimEnd() }
        $lines[2] | Should -Match '^…-long-name\.sock\s+0\s+Open\s+\d+\.\d$'
    }

    It 'says Refused for a socket file nobody listens on' -Skip:$NoPython {
        $path = Join-Path $socketDir 'stale.sock'
        python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$path')"
        Test-Path -LiteralPath $path | Should -BeTrue
        $r = Test-TcpEndpoint -UnixSocket $path -Timeout 10
        $r.Status | Should -Be 'Refused'
        $r.Error | Should -Not -BeNullOrEmpty
    }

    It 'says Open for redis-server --unixsocket' -Skip:$NoRedis {
        $path = Join-Path $socketDir 'redis.sock'
        $redis = Start-TestProgram redis-server @('--port', '0', '--unixsocket', $path, '--save', '', '--appendonly', 'no') -UnixSocket $path
        try {
            (Test-TcpEndpoint -UnixSocket $path -Timeout 10).Status | Should -Be 'Open'
        } finally { Stop-TestProgram $redis }
        (Test-TcpEndpoint -UnixSocket $path -Timeout 10).Status | Should -BeIn @('Refused', 'HostNotFound') -Because 'redis is gone'
    }

    It 'takes no -Proxy or -Port with -UnixSocket' {
        { Test-TcpEndpoint -UnixSocket (Join-Path $socketDir 'x.sock') -Proxy 'socks5://127.0.0.1:1080' } | Should -Throw -ErrorId 'AmbiguousParameterSet,*'
        { Test-TcpEndpoint -UnixSocket (Join-Path $socketDir 'x.sock') -Port 80 } | Should -Throw -ErrorId 'AmbiguousParameterSet,*'
    }
}

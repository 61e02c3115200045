# Several PSTcp servers behind a real HAProxy in TCP mode, with send-proxy-v2 and health checks:
# every client's own address must reach the servers. Skipped where haproxy is not installed
# (.ci/run installs it).

BeforeDiscovery {
    $haproxy = Get-Command haproxy -CommandType Application -ErrorAction Ignore | Select-Object -First 1
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # One client with its own source address: a socket bound to it before connecting.
    $script:clientScript = {
        param([string] $Source, [int] $Port)
        $socket = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork,
            [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        try {
            $socket.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Parse($Source), 0))
            if (-not $socket.ConnectAsync([System.Net.IPAddress]::Loopback, $Port).Wait(10000)) { throw "connect from $Source timed out" }
            $line = [System.Text.Encoding]::ASCII.GetBytes("hello from $Source`n")
            $null = $socket.Send($line)
            $buffer = [byte[]]::new(256)
            $got = 0
            $socket.ReceiveTimeout = 10000
            while ($got -lt $line.Length) {
                $n = $socket.Receive($buffer, $got, $buffer.Length - $got, [System.Net.Sockets.SocketFlags]::None)
                if ($n -eq 0) { break }
                $got += $n
            }
            [pscustomobject]@{ Source = $Source; Echo = [System.Text.Encoding]::ASCII.GetString($buffer, 0, $got) }
        } finally {
            $socket.Dispose()
        }
    }
}

Describe 'PSTcp servers behind HAProxy' -Skip:($null -eq $haproxy) {
    BeforeAll {
        $servers = @(
            Start-TcpEchoServer -Port 0 -ProxyProtocol -Name backend1
            Start-TcpEchoServer -Port 0 -ProxyProtocol -Name backend2
        )
        $frontPort = Get-FreeTcpPort
        $dir = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-haproxy-$([guid]::NewGuid().ToString('N'))"
        $null = New-Item -ItemType Directory $dir
        $config = Join-Path $dir 'haproxy.cfg'
        # Health checks every 200 ms; check-send-proxy makes them PROXY v2 LOCAL connections.
        @"
global
    maxconn 512

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend front
    bind 127.0.0.1:$frontPort
    default_backend pstcp

backend pstcp
    balance roundrobin
    server backend1 127.0.0.1:$($servers[0].Port) send-proxy-v2 check check-send-proxy inter 200ms
    server backend2 127.0.0.1:$($servers[1].Port) send-proxy-v2 check check-send-proxy inter 200ms
"@ | Set-Content -Path $config -Encoding ascii
        $haproxyPath = (Get-Command haproxy -CommandType Application | Select-Object -First 1).Source
        $process = Start-Process -FilePath $haproxyPath -ArgumentList '-db', '-f', $config -PassThru `
            -RedirectStandardOutput (Join-Path $dir 'out.log') -RedirectStandardError (Join-Path $dir 'err.log')
        # Ready when it listens and both health checks reached their server.
        Wait-Until { Test-TcpEndpoint 127.0.0.1 $frontPort -Quiet -Timeout '00:00:01' } -Timeout 15 -Because 'haproxy to listen'
        Wait-Until { $servers[0].TotalConnections -ge 2 -and $servers[1].TotalConnections -ge 2 } -Timeout 15 -Because 'health checks'
    }
    AfterAll {
        if ($process -and -not $process.HasExited) { $process.Kill(); $null = $process.WaitForExit(10000) }
        Clear-PSTcpState
        if ($dir) { Remove-Item -Recurse -Force $dir -ErrorAction Ignore }
    }

    It 'gets every client''s own address through HAProxy to both servers, with health checks on' {
        $sources = 2..21 | ForEach-Object { "127.0.0.$_" }
        $script = $script:clientScript.ToString()
        # Half the clients from runspaces in this process, half from a job in another process.
        $threaded = $sources[0..9] | ForEach-Object -ThrottleLimit 10 -Parallel {
            & ([scriptblock]::Create($using:script)) $_ $using:frontPort
        }
        $job = Start-Job -ScriptBlock {
            param($Script, $Sources, $Port)
            # Start-Job would take a $using: here as its own: build the parallel block from text.
            $Sources | ForEach-Object -ThrottleLimit 10 -Parallel ([scriptblock]::Create('& ([scriptblock]::Create($using:Script)) $_ $using:Port'))
        } -ArgumentList $script, $sources[10..19], $frontPort
        $null = Wait-Job $job -Timeout 60
        $fromJob = Receive-Job $job
        Remove-Job $job -Force
        $replies = @($threaded) + @($fromJob)

        # Every client got its own line back through HAProxy.
        $replies | Should -HaveCount 20
        foreach ($reply in $replies) { $reply.Echo | Should -BeExactly "hello from $($reply.Source)`n" }

        # Every message on the servers carries its client's real address, and both servers served.
        $consumerErrors = @()
        $messages = foreach ($server in $servers) {
            Receive-TcpMessage -Server $server -Count ($server.MessagesReceived) -Timeout '00:00:05' -ErrorVariable +consumerErrors
        }
        $messages | Should -HaveCount 20
        foreach ($m in $messages) {
            $m.Text | Should -BeExactly "hello from $($m.RemoteEndPoint.Address)"
        }
        ($messages | ForEach-Object { "$($_.RemoteEndPoint.Address)" } | Sort-Object -Unique) | Should -HaveCount 20
        $servers[0].MessagesReceived | Should -BeGreaterThan 0
        $servers[1].MessagesReceived | Should -BeGreaterThan 0

        # Health checks (a PROXY v2 LOCAL header, then HAProxy closes with a reset) are served,
        # never rejected, and cause no error: a reset that drops nothing is a normal end.
        $consumerErrors | Should -BeNullOrEmpty
        foreach ($server in $servers) {
            $server.ConnectionsRejected | Should -Be 0
            $server.ErrorCount | Should -Be 0 -Because "$($server.Name) had: $($server.LastError.Message)"
        }
        $process.HasExited | Should -BeFalse
    }
}

# -UnixSocket: clients to a real redis-server --unixsocket, and PSTcp servers on a Unix domain
# socket; plus -LocalAddress/-LocalPort for TCP clients.

BeforeDiscovery {
    $script:NoUnix = $IsWindows
    $script:NoRedis = $NoUnix -or $null -eq (Get-Command redis-server -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $seconds10 = [TimeSpan]::FromSeconds(10)
    # Short: a Unix socket's path is at most 107 bytes, and TestDrive can be deep.
    $socketDir = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $null = New-Item -ItemType Directory -Path $socketDir
}

AfterAll {
    Clear-PSTcpState
    Remove-Item -LiteralPath $socketDir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'redis-server --unixsocket' -Skip:$NoRedis {
    BeforeAll {
        $path = Join-Path $socketDir 'redis.sock'
        $redis = Start-TestProgram redis-server @('--port', '0', '--unixsocket', $path, '--save', '', '--appendonly', 'no') -UnixSocket $path
    }
    AfterAll { Stop-TestProgram $redis }
    AfterEach { Get-TcpConnection | Disconnect-TcpEndpoint -ErrorAction SilentlyContinue }

    It 'answers Invoke-TcpRequest -UnixSocket' {
        (Invoke-TcpRequest -UnixSocket $path 'PING' -Timeout $seconds10).Text | Should -BeExactly '+PONG'
    }

    It 'keeps a Connect-TcpEndpoint -UnixSocket connection, whose RemoteEndPoint is the path' {
        $c = Connect-TcpEndpoint -UnixSocket $path
        "$($c.RemoteEndPoint)" | Should -Be $path
        Send-TcpLine -UnixSocket $path -Line 'SET pstcp-unix yes'
        Send-TcpLine -Connection $c -Line 'GET pstcp-unix'
        @(Receive-TcpMessage -Connection $c -Count 2 -Timeout $seconds10).Text | Should -BeExactly @('$3', 'yes')
    }

    It 'sends a framed message with Send-TcpMessage -UnixSocket' {
        Send-TcpMessage -UnixSocket $path -Message "SET pstcp-msg framed`r`n" -Framing Raw
        (Invoke-TcpRequest -UnixSocket $path 'GET pstcp-msg' -Count 2 -Timeout $seconds10).Text | Should -BeExactly @('$6', 'framed')
    }

    It 'is reached by TCP clients through Start-TcpRelay -TargetUnixSocket' {
        $relay = Start-TcpRelay -Port 0 -TargetUnixSocket $path
        try {
            $relay.Target | Should -Be "unix:$path"
            (Invoke-TcpRequest 127.0.0.1 $relay.Port 'PING' -Timeout $seconds10).Text | Should -BeExactly '+PONG'
            $c = Connect-TcpEndpoint 127.0.0.1 $relay.Port
            Send-TcpLine -Connection $c -Line 'SET pstcp-relayed unix', 'GET pstcp-relayed'
            @(Receive-TcpMessage -Connection $c -Count 3 -Timeout $seconds10).Text | Should -BeExactly @('+OK', '$4', 'unix')
            Disconnect-TcpEndpoint -Connection $c
        } finally { $relay | Stop-TcpServer }
    }

    It 'reports a path nobody listens on as ConnectionRefused' {
        $r = Invoke-Captured { Connect-TcpEndpoint -UnixSocket (Join-Path $socketDir 'nobody.sock') }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused,*'
    }
}

Describe 'PSTcp servers on a Unix domain socket' -Skip:$NoUnix {
    AfterEach { Clear-PSTcpState }

    It 'serves an echo server at the path, and removes the file when stopped' {
        $path = Join-Path $socketDir 'echo.sock'
        $server = Start-TcpEchoServer -UnixSocket $path
        $server.Port | Should -Be 0
        "$($server.LocalEndPoint)" | Should -Be $path
        Test-Path -LiteralPath $path | Should -BeTrue
        (Invoke-TcpRequest -UnixSocket $path 'over unix' -Timeout $seconds10).Text | Should -BeExactly 'over unix'
        @(Receive-TcpMessage -Server $server -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('over unix')
        $server | Stop-TcpServer
        Test-Path -LiteralPath $path | Should -BeFalse
    }

    It 'answers a real client (redis-cli -s is not needed: python3 connects)' -Skip:($null -eq (Get-Command python3 -ErrorAction SilentlyContinue)) {
        $path = Join-Path $socketDir 'handler.sock'
        $server = Start-TcpServer -UnixSocket $path -ScriptBlock { param($Message) "got $($Message.Text)" }
        $code = "import socket; s=socket.socket(socket.AF_UNIX); s.connect('$path'); s.sendall(b'ping\n'); print(s.makefile().readline().strip())"
        python3 -c $code | Should -BeExactly 'got ping'
    }

    It 'serves TLS over the socket' {
        $path = Join-Path $socketDir 'tls.sock'
        $server = Start-TcpEchoServer -UnixSocket $path -Certificate (New-TestCertificate -Subject localhost)
        $c = Connect-TcpEndpoint -UnixSocket $path -SkipCertificateCheck
        Send-TcpLine -Connection $c -Line 'secret'
        @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10).Text | Should -BeExactly @('secret')
        $c.Tls.Protocol | Should -Not -BeNullOrEmpty
    }

    It 'replaces a stale socket file, and refuses a path a live server holds with PortInUse' -Skip:($null -eq (Get-Command python3 -ErrorAction SilentlyContinue)) {
        $path = Join-Path $socketDir 'stale.sock'
        $first = Start-TcpEchoServer -UnixSocket $path
        $r = Invoke-Captured { Start-TcpEchoServer -UnixSocket $path }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'PortInUse,*'
        # A file left behind by a process that died: a bound socket nobody listens on.
        $first | Stop-TcpServer
        # (.NET removes its own socket files on close; python3 leaves one, as a killed process would.)
        python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$path')"
        Test-Path -LiteralPath $path | Should -BeTrue
        $second = Start-TcpEchoServer -UnixSocket $path
        (Invoke-TcpRequest -UnixSocket $path 'again' -Timeout $seconds10).Text | Should -BeExactly 'again'
    }

    It 'closes a relay''s client whose Unix-socket target is gone, and records it; refuses -TargetUnixSocket with -TargetHost or -Proxy' {
        $missing = Join-Path $socketDir 'gone.sock'
        $relay = Start-TcpRelay -Port 0 -TargetUnixSocket $missing -NoQueue
        try {
            $client = New-RawClient $relay.Port
            try {
                Test-RawClosed $client -Timeout 5 | Should -BeTrue
            } finally { $client.Dispose() }
            Wait-Until { $relay.ErrorCount -eq 1 } -Timeout 5
            $relay.LastError.Message | Should -BeLike "*unix:$missing*"
            $relay.State | Should -Be 'Running'
        } finally { $relay | Stop-TcpServer }
        { Start-TcpRelay -Port 0 -TargetUnixSocket $missing -TargetHost 127.0.0.1 -TargetPort 1 } | Should -Throw -ErrorId 'AmbiguousParameterSet,*'
        { Start-TcpRelay -Port 0 -TargetUnixSocket $missing -Proxy 'socks5://127.0.0.1:1080' } | Should -Throw -ErrorId 'AmbiguousParameterSet,*'
    }

    It 'refuses -UnixSocket with -Port' {
        $r = Invoke-Captured { Start-TcpEchoServer -UnixSocket (Join-Path $socketDir 'x.sock') -Port 0 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }
}

Describe 'Client local address and port' {
    AfterEach { Clear-PSTcpState }

    It 'connects from -LocalAddress and -LocalPort, as the server sees it' {
        $server = Start-TcpEchoServer -Port 0
        $local = Get-FreeTcpPort
        $c = Connect-TcpEndpoint 127.0.0.1 $server.Port -LocalAddress 127.0.0.1 -LocalPort $local
        $c.LocalEndPoint.Port | Should -Be $local
        Wait-Until { @(Get-TcpConnection -Server $server).Count -eq 1 }
        @(Get-TcpConnection -Server $server)[0].RemoteEndPoint.Port | Should -Be $local
    }

    It 'reports a local address of the wrong family as AddressNotAvailable' {
        $server = Start-TcpEchoServer -Port 0
        $r = Invoke-Captured { Connect-TcpEndpoint 127.0.0.1 $server.Port -LocalAddress '::1' }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'AddressNotAvailable,*'
    }
}

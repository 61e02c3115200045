# -Proxy: Invoke-TcpRequest (and Connect-TcpEndpoint, Send-TcpLine) to a real redis-server through
# microsocks (SOCKS5, with and without a login) and tinyproxy (HTTP CONNECT), each started here on
# a free loopback port; the target's name is resolved by the proxy.

BeforeDiscovery {
    $has = { param($name) $null -ne (Get-Command $name -CommandType Application -ErrorAction SilentlyContinue) }
    $script:NoRedis = -not (& $has 'redis-server')
    $script:NoMicrosocks = $NoRedis -or -not (& $has 'microsocks')
    $script:NoTinyproxy = $NoRedis -or -not (& $has 'tinyproxy')
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $seconds10 = [TimeSpan]::FromSeconds(10)
    if (Get-Command redis-server -CommandType Application -ErrorAction SilentlyContinue) {
        $redisPort = Get-FreeTcpPort
        $redis = Start-TestProgram redis-server @('--port', "$redisPort", '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no') -Port $redisPort
    }
}

AfterAll {
    Clear-PSTcpState
    Stop-TestProgram $redis
}

Describe 'SOCKS5 through microsocks' -Skip:$NoMicrosocks {
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
    AfterEach { Get-TcpConnection | Disconnect-TcpEndpoint -ErrorAction SilentlyContinue }

    It 'asks redis through a proxy without a login, the name resolved by the proxy' {
        (Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "socks5://127.0.0.1:$openPort" -Timeout $seconds10).Text | Should -BeExactly '+PONG'
    }

    It 'Enter-TcpSession goes through the proxy: without the login it needs, ProxyAuthenticationFailed' {
        # (A whole conversation isn't asserted: the session half-closes at the end of its input,
        # and microsocks then closes both ways, racing the answers.)
        $failure = $null
        try { 'PING' | Enter-TcpSession localhost $redisPort -Proxy "socks5://127.0.0.1:$lockedPort" -ErrorAction Stop } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -BeLike 'ProxyAuthenticationFailed,*'
        Get-TcpConnection | Should -BeNullOrEmpty
    }

    It 'logs in with credentials in the URI' {
        (Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "socks5://user:pass@127.0.0.1:$lockedPort" -Timeout $seconds10).Text | Should -BeExactly '+PONG'
    }

    It 'logs in with -ProxyCredential, and keeps a connection open through the tunnel' {
        $credential = [pscredential]::new('user', (ConvertTo-SecureString 'pass' -AsPlainText -Force))
        $c = Connect-TcpEndpoint localhost $redisPort -Proxy "socks5://127.0.0.1:$lockedPort" -ProxyCredential $credential
        Send-TcpLine -Connection $c -Line 'SET pstcp-proxy through', 'GET pstcp-proxy'
        @(Receive-TcpMessage -Connection $c -Count 3 -Timeout $seconds10).Text | Should -BeExactly @('+OK', '$7', 'through')
        "$($c.RemoteEndPoint)" | Should -BeLike "*:$lockedPort" -Because 'the socket goes to the proxy'
    }

    It 'reports <Case> as ProxyAuthenticationFailed' -ForEach @(
        @{ Case = 'a missing login'; Proxy = 'socks5://127.0.0.1:{0}' }
        @{ Case = 'a wrong password'; Proxy = 'socks5://user:wrong@127.0.0.1:{0}' }
    ) {
        $r = Invoke-Captured { Invoke-TcpRequest localhost $redisPort 'PING' -Proxy ($Proxy -f $lockedPort) -Timeout $seconds10 }
        $r.Output | Should -HaveCount 0
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ProxyAuthenticationFailed,*'
    }

    It 'reports a proxy that is not there, and a refused target, as ProxyFailed' {
        $nobody = Get-FreeTcpPort
        $r = Invoke-Captured { Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "socks5://127.0.0.1:$nobody" -Timeout $seconds10 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ProxyFailed,*'
        $r = Invoke-Captured { Invoke-TcpRequest localhost $nobody 'PING' -Proxy "socks5://127.0.0.1:$openPort" -Timeout $seconds10 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ProxyFailed,*'
        "$($r.Errors[0])" | Should -BeLike "*could not connect to localhost:$nobody*"
    }

    It 'sends one-shot lines through the proxy' {
        Send-TcpLine -HostName localhost -Port $redisPort -Line 'SET pstcp-oneshot yes' -Proxy "socks5://127.0.0.1:$openPort"
        (Invoke-TcpRequest localhost $redisPort 'GET pstcp-oneshot' -Count 2 -Timeout $seconds10).Text | Should -BeExactly @('$3', 'yes')
    }

    It 'relays to redis through the proxy (Start-TcpRelay -Proxy)' {
        $relay = Start-TcpRelay -Port 0 -TargetHost localhost -TargetPort $redisPort -Proxy "socks5://user:pass@127.0.0.1:$lockedPort"
        try {
            (Invoke-TcpRequest 127.0.0.1 $relay.Port 'PING' -Timeout $seconds10).Text | Should -BeExactly '+PONG'
        } finally { $relay | Stop-TcpServer }
    }

    It 'refuses an unknown proxy scheme with InvalidArgument' {
        $r = Invoke-Captured { Invoke-TcpRequest localhost $redisPort 'PING' -Proxy 'ftp://127.0.0.1:21' }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }
}

Describe 'HTTP CONNECT through tinyproxy' -Skip:$NoTinyproxy {
    BeforeAll {
        $proxyPort = Get-FreeTcpPort
        $config = Join-Path $TestDrive 'tinyproxy.conf'
        Set-Content -LiteralPath $config -Value @(
            "Port $proxyPort", 'Listen 127.0.0.1', 'Allow 127.0.0.1', "ConnectPort $redisPort", 'MaxClients 20', 'LogLevel Error', 'Timeout 30')
        $tinyproxy = Start-TestProgram tinyproxy @('-d', '-c', $config) -Port $proxyPort
    }
    AfterAll { Stop-TestProgram $tinyproxy }

    It 'asks redis through CONNECT' {
        (Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "http://127.0.0.1:$proxyPort" -Timeout $seconds10).Text | Should -BeExactly '+PONG'
    }

    It 'logs in with Basic auth, and reports a wrong password as ProxyAuthenticationFailed (tinyproxy answers 401)' {
        $lockedPort = Get-FreeTcpPort
        $config = Join-Path $TestDrive 'tinyproxy-auth.conf'
        Set-Content -LiteralPath $config -Value @(
            "Port $lockedPort", 'Listen 127.0.0.1', 'Allow 127.0.0.1', "ConnectPort $redisPort", 'MaxClients 20', 'LogLevel Error', 'Timeout 30', 'BasicAuth user pass')
        $locked = Start-TestProgram tinyproxy @('-d', '-c', $config) -Port $lockedPort
        try {
            (Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "http://user:pass@127.0.0.1:$lockedPort" -Timeout $seconds10).Text | Should -BeExactly '+PONG'
            $r = Invoke-Captured { Invoke-TcpRequest localhost $redisPort 'PING' -Proxy "http://user:wrong@127.0.0.1:$lockedPort" -Timeout $seconds10 }
            $r.Output | Should -HaveCount 0
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ProxyAuthenticationFailed,*'
        } finally { Stop-TestProgram $locked }
    }

    It 'reports a CONNECT the proxy refuses (a port it does not allow) as ProxyFailed with its status' {
        $other = Get-FreeTcpPort
        $r = Invoke-Captured { Invoke-TcpRequest localhost $other 'PING' -Proxy "http://127.0.0.1:$proxyPort" -Timeout $seconds10 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ProxyFailed,*'
        "$($r.Errors[0])" | Should -BeLike '*403*'
    }
}

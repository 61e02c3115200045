BeforeDiscovery {
    # IPv6 loopback may be missing (containers without ::1): probe with a plain listener.
    $ipv6 = $false
    try {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::IPv6Loopback, 0)
        $probe.Start()
        $probe.Stop()
        $ipv6 = $true
    } catch { }
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)
}

Describe 'Connect-TcpEndpoint' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "cli-srv-$([guid]::NewGuid().ToString('N'))"
    }
    AfterEach { Clear-PSTcpState }

    It 'returns an open PSTcp.TcpConnection with its end points' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $c | Should -HaveCount 1
        $c.PSObject.TypeNames | Should -Contain 'PSTcp.TcpConnection'
        $c.State | Should -Be 'Open'
        $c.Id | Should -BeOfType [int]
        $c.RemoteEndPoint | Should -BeOfType [System.Net.IPEndPoint]
        $c.RemoteEndPoint.Port | Should -Be $server.Port
        $c.RemoteEndPoint.Address.ToString() | Should -Be '127.0.0.1'
        $c.LocalEndPoint.Address.ToString() | Should -Be '127.0.0.1'
        $c.LocalEndPoint.Port | Should -BeGreaterThan 0
        $c.ConnectedAt | Should -Not -BeNullOrEmpty
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 1 }
        @(Get-TcpConnection -Server $server)[0].RemoteEndPoint.Port | Should -Be $c.LocalEndPoint.Port
    }

    It 'accepts positional host name and port, and resolves localhost' {
        $c = Connect-TcpEndpoint localhost $server.Port
        $c.State | Should -Be 'Open'
        $c.RemoteEndPoint.Port | Should -Be $server.Port
        [System.Net.IPAddress]::IsLoopback($c.RemoteEndPoint.Address) | Should -BeTrue
    }

    It 'connects to an IPv6 loopback server' -Skip:(-not $ipv6) {
        $server6 = Start-TcpEchoServer -Port 0 -Address ::1
        $server6.LocalEndPoint.Address.ToString() | Should -Be '::1'
        $c = Connect-TcpEndpoint -HostName ::1 -Port $server6.Port
        $c.State | Should -Be 'Open'
        $c.RemoteEndPoint.AddressFamily | Should -Be 'InterNetworkV6'
        Send-TcpLine -Connection $c -Line 'over six'
        $echo = @(Receive-TcpMessage -Connection $c -Count 1 -Timeout $seconds10)
        $echo.Text | Should -BeExactly @('over six')
        $queued = @(Receive-TcpMessage -Server $server6 -Count 1 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @('over six')
        $queued[0].RemoteEndPoint.Address.ToString() | Should -Be '::1'
    }
}

Describe 'Send-TcpLine and Receive-TcpMessage -Connection' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "cli-srv-$([guid]::NewGuid().ToString('N'))"
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Name "cli-$([guid]::NewGuid().ToString('N'))"
    }
    AfterEach { Clear-PSTcpState }

    It 'sends an array given to -Line and gets the echoes back' {
        $out = @(Send-TcpLine -Connection $c -Line 'alpha', 'beta', 'gamma')
        $out | Should -HaveCount 0
        $echo = @(Receive-TcpMessage -Connection $c -Count 3 -Timeout $seconds10)
        $echo.Text | Should -BeExactly @('alpha', 'beta', 'gamma')
        $echo.Sequence | Should -Be @(1, 2, 3)
        $echo[0].PSObject.TypeNames | Should -Contain 'PSTcp.TcpMessage'
        $echo[0].ConnectionId | Should -Be $c.Id
        $echo[0].Source | Should -BeExactly $c.Name
        $queued = @(Receive-TcpMessage -Server $server -Count 3 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @('alpha', 'beta', 'gamma')
        $c.MessagesSent | Should -Be 3
        $c.BytesSent | Should -Be 17
        Wait-Until { $c.MessagesReceived -eq 3 }
        $c.BytesReceived | Should -Be 17
    }

    It 'sends lines from the pipeline, positionally bound connection' {
        'one', 'two' | Send-TcpLine $c
        $echo = @(Receive-TcpMessage $c -Count 2 -Timeout $seconds10)
        $echo.Text | Should -BeExactly @('one', 'two')
    }

    It 'sends 100,000 piped lines in order and gets every echo back' {
        $count = 100000
        $c2 = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -QueueCapacity ($count + 10)
        1..$count | ForEach-Object { "line $_" } | Send-TcpLine -Connection $c2
        $echo = @(Receive-TcpMessage -Connection $c2 -Count $count -Timeout ([TimeSpan]::FromSeconds(90)))
        $echo | Should -HaveCount $count
        $echo[0].Text | Should -BeExactly 'line 1'
        $echo[-1].Text | Should -BeExactly "line $count"
        $expected = [string[]]::new($count)
        for ($i = 0; $i -lt $count; $i++) { $expected[$i] = "line $($i + 1)" }
        [System.Linq.Enumerable]::SequenceEqual([string[]]$echo.Text, $expected) | Should -BeTrue
        [System.Linq.Enumerable]::SequenceEqual([long[]]$echo.Sequence, [long[]](1..$count)) | Should -BeTrue
        $c2.MessagesSent | Should -Be $count
        $c2.MessagesDropped | Should -Be 0
        (Get-TcpServer -Id $server.Id).MessagesReceived | Should -Be $count
    }

    It 'returns the connection with -PassThru' {
        $out = @(Send-TcpLine -Connection $c -Line 'p' -PassThru)
        $out | Should -HaveCount 1
        $out[0].PSObject.TypeNames | Should -Contain 'PSTcp.TcpConnection'
        $out[0].Id | Should -Be $c.Id
    }

    It 'ends Receive-TcpMessage without -Count when the peer closes' {
        Send-TcpLine -Connection $c -Line 'a', 'b', 'c'
        Wait-Until { $c.MessagesReceived -eq 3 } -Because 'the three echoes to arrive'
        $server | Stop-TcpServer
        # -Timeout only guards the suite against a hang; the receive must end by itself.
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Timeout ([TimeSpan]::FromSeconds(20)) }
        $r.Errors | Should -HaveCount 0
        $r.Output.Text | Should -BeExactly @('a', 'b', 'c')
        $r.Elapsed.TotalSeconds | Should -BeLessThan 15
        Wait-Until { $c.State -eq 'Closed' } -Because 'the client side to close after the peer did'
    }

    It 'stops a waiting Receive-TcpMessage promptly when the pipeline is stopped (Ctrl+C)' {
        # The receive runs on another thread in its own runspace so that this one can stop it.
        $background = Start-BackgroundScript {
            param($ModulePath, $Connection)
            Import-Module $ModulePath
            Receive-TcpMessage -Connection $Connection
        } -ArgumentList "$PSScriptRoot/../out/PSTcp/PSTcp.psd1", $c
        try {
            Send-TcpLine -Connection $c -Line 'before stop'
            Wait-Until { $background.Output.Count -ge 1 } -Because 'the receive to be running and waiting'
            $background.Async.IsCompleted | Should -BeFalse
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $stop = $background.PowerShell.BeginStop($null, $null)
            $stopped = $stop.AsyncWaitHandle.WaitOne(5000)
            $watch.Stop()
            $stopped | Should -BeTrue -Because 'a stopped receive must end'
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 2
            $background.Output[0].Text | Should -BeExactly 'before stop'
            $c.State | Should -Be 'Open' -Because 'stopping a receive does not close the connection'
        } finally {
            Stop-BackgroundScript $background
        }
    }

    It 'fails with ReceiveTimeout when fewer than -Count messages arrive within -Timeout' {
        Send-TcpLine -Connection $c -Line 'only', 'two'
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Count 5 -Timeout ([TimeSpan]::FromSeconds(1)) }
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout*'
        $r.Errors[0].CategoryInfo.Category | Should -Not -Be 'NotSpecified'
        $r.Output.Text | Should -BeExactly @('only', 'two')
        $r.Elapsed.TotalSeconds | Should -BeLessThan 10
    }
}

Describe 'The per-message cmdlets on a connection (issue 22: cheap calls)' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -Name "cheap-srv-$([guid]::NewGuid().ToString('N'))"
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Name "cheap-$([guid]::NewGuid().ToString('N'))"
    }
    AfterAll { Clear-PSTcpState }

    It '<Name> has no dynamic parameters: its client connection parameters are static' -ForEach @(
        @{ Name = 'Send-TcpMessage' }, @{ Name = 'Send-TcpLine' }, @{ Name = 'Invoke-TcpRequest' }
    ) {
        # PowerShell copies a dynamic-parameter cmdlet's whole parameter metadata on every call.
        $command = Get-Command $Name
        $command.ImplementingType.GetInterfaces().Name | Should -Not -Contain 'IDynamicParameters'
        foreach ($p in 'UseTls', 'ServerName', 'SkipCertificateCheck', 'ClientCertificate', 'ClientCertificatePath', 'LocalAddress', 'LocalPort', 'SslProtocol') {
            $command.Parameters[$p].IsDynamic | Should -BeFalse -Because "-$p is declared on the cmdlet"
        }
    }

    It '<Name> refuses client connection parameters with -Connection as InvalidArgument, sending nothing' -ForEach @(
        @{ Name = 'Send-TcpMessage'; Call = { Send-TcpMessage -Connection $c -Message 'x' -UseTls } }
        @{ Name = 'Send-TcpLine'; Call = { Send-TcpLine -Connection $c -Line 'x' -LocalPort 1 } }
        @{ Name = 'Invoke-TcpRequest'; Call = { Invoke-TcpRequest -Connection $c -Message 'x' -ServerName 'example' } }
    ) {
        $sent = $c.BytesSent
        { & $Call } | Should -Throw -ErrorId 'InvalidArgument*'
        $c.BytesSent | Should -Be $sent
    }

    It 'sends one string, one byte[] and one line as one message each, and gets each back' {
        Send-TcpMessage -Connection $c -Message 'one'
        Send-TcpMessage -Connection $c -Message ([Text.Encoding]::ASCII.GetBytes('two'))
        Send-TcpLine -Connection $c -Line 'three'
        Send-TcpLine $c 'four'
        (Receive-TcpMessage -Connection $c -Count 4 -Timeout 10).Text | Should -BeExactly @('one', 'two', 'three', 'four')
        (Invoke-TcpRequest -Connection $c -Message 'five' -Timeout 10).Text | Should -BeExactly 'five'
    }
}

Describe 'Send-TcpLine byte format' {
    BeforeEach {
        $listener = New-RawListener
        $port = $listener.LocalEndpoint.Port
        $peer = $null
    }
    AfterEach {
        # Peer first: a graceful Disconnect waits a while for the peer's FIN.
        Close-RawClient $peer
        Clear-PSTcpState
        $listener.Stop()
    }

    It 'terminates each line with LF by default' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port
        $peer = Receive-RawConnection $listener
        Send-TcpLine -Connection $c -Line 'a', 'bc', ''
        ConvertTo-Hex (Read-RawBytes $peer 6) | Should -Be (ConvertTo-Hex (ConvertTo-Bytes "a`nbc`n`n"))
    }

    It 'uses -NewLine "`r`n"' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port
        $peer = Receive-RawConnection $listener
        Send-TcpLine -Connection $c -Line 'a', 'b' -NewLine "`r`n"
        ConvertTo-Hex (Read-RawBytes $peer 6) | Should -Be (ConvertTo-Hex (ConvertTo-Bytes "a`r`nb`r`n"))
        $c.BytesSent | Should -Be 6
    }

    It 'queues lines the peer sends, even without a trailing LF at close' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port
        $peer = Receive-RawConnection $listener
        Send-RawBytes $peer "from peer`r`nlast"
        Close-RawSend $peer
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Timeout ([TimeSpan]::FromSeconds(20)) }
        $r.Errors | Should -HaveCount 0
        $r.Output.Text | Should -BeExactly @('from peer', 'last')
        $r.Output[0].Source | Should -BeExactly $c.Name
    }

    It 'surfaces a reset by the peer as an error, not as a clean end' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port
        $peer = Receive-RawConnection $listener
        Send-RawBytes $peer "before reset`n"
        Wait-Until { $c.MessagesReceived -eq 1 }
        Reset-RawClient $peer
        Wait-Until { $c.State -eq 'Closed' } -Because 'the reset to close the connection'
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Timeout ([TimeSpan]::FromSeconds(20)) }
        $r.Output.Text | Should -BeExactly @('before reset')
        $r.Errors.Count | Should -BeGreaterThan 0 -Because 'a reset is not a clean end'
        # Every failure's id starts with one of the documented ids (about_PSTcp, ERRORS); a reset closes the connection.
        $specIds = 'PortInUse', 'AddressNotAvailable', 'HostNotFound', 'ConnectionRefused', 'ConnectTimeout',
            'ConnectionClosed', 'LineTooLong', 'ReceiveTimeout', 'ServerNotFound', 'ConnectionNotFound'
        ($r.Errors[0].FullyQualifiedErrorId -split ',')[0] | Should -BeIn $specIds
        $r.Errors[0].CategoryInfo.Category | Should -Not -Be 'NotSpecified'
    }
}

Describe 'Send-TcpLine one-shot' {
    AfterEach { Clear-PSTcpState }

    It 'connects, sends and closes with -HostName and -Port' {
        $server = Start-TcpEchoServer -Port 0
        $out = @(Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line 'x', 'y')
        $out | Should -HaveCount 0
        $queued = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @('x', 'y')
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 0 } -Because 'the one-shot connection to close'
        (Get-TcpServer -Id $server.Id).TotalConnections | Should -Be 1
    }

    It 'takes lines from the pipeline in one connection' {
        $server = Start-TcpEchoServer -Port 0
        1..50 | ForEach-Object { "p$_" } | Send-TcpLine -HostName 127.0.0.1 -Port $server.Port
        $queued = @(Receive-TcpMessage -Server $server -Count 50 -Timeout $seconds10)
        $queued.Text | Should -BeExactly ([string[]](1..50 | ForEach-Object { "p$_" }))
        ($queued.ConnectionId | Sort-Object -Unique) | Should -HaveCount 1
    }
}

Describe 'Disconnect-TcpEndpoint and Get-TcpConnection' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0
        $prefix = "gtc-$([guid]::NewGuid().ToString('N'))"
    }
    AfterEach { Clear-PSTcpState }

    It 'closes from the pipeline after flushing; the server sees the connection gone' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 1 }
        Send-TcpLine -Connection $c -Line 'last words'
        $out = @($c | Disconnect-TcpEndpoint)
        $out | Should -HaveCount 0
        $c.State | Should -Be 'Closed'
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 0 } -Because 'the server to see the close'
        @(Get-TcpConnection -Server $server) | Should -HaveCount 0
        $queued = @(Receive-TcpMessage -Server $server -Count 1 -Timeout $seconds10)
        $queued.Text | Should -BeExactly @('last words')
    }

    It 'disconnects several connections from the pipeline' {
        $a = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $b = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 2 }
        $a, $b | Disconnect-TcpEndpoint
        $a.State | Should -Be 'Closed'
        $b.State | Should -Be 'Closed'
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 0 }
    }

    It 'lists client connections by -Id and by -Name with wildcards' {
        $a = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Name "$prefix-a"
        $b = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Name "$prefix-b"
        $a.Name | Should -BeExactly "$prefix-a"

        $all = @(Get-TcpConnection)
        $all.Id | Should -Contain $a.Id
        $all.Id | Should -Contain $b.Id
        # Client listing does not mix in the server's accepted connections.
        $serverSide = @(Get-TcpConnection -Server $server).Id
        $serverSide | Should -HaveCount 2
        foreach ($id in $serverSide) { $all.Id | Should -Not -Contain $id }

        $byId = @(Get-TcpConnection -Id $b.Id)
        $byId | Should -HaveCount 1
        $byId[0].Name | Should -BeExactly "$prefix-b"
        @(Get-TcpConnection $a.Id, $b.Id) | Should -HaveCount 2

        $byName = @(Get-TcpConnection -Name "$prefix-*")
        $byName | Should -HaveCount 2
        @(Get-TcpConnection -Name "$prefix-a").Id | Should -Be @($a.Id)
        @(Get-TcpConnection -Name "nomatch-$prefix-*") | Should -HaveCount 0
    }
}

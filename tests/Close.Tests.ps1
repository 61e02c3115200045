#requires -Version 7.0
# Nothing hangs on close, and nothing stays open: Disconnect-TcpEndpoint and Stop-TcpServer
# reset past -Timeout and say so; the connection Send-TcpLine -HostName opens is closed on
# every path (the end, an upstream failure, Ctrl+C, Remove-Module).

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:manifest = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").Path

    # Waits until a counter stops moving between two polls: a send stuck on a full socket.
    function Wait-Stalled([scriptblock] $Counter, [object] $Timeout = 30) {
        $script:lastCount = -1L
        Wait-Until {
            $now = [long](& $Counter)
            $same = $now -gt 0 -and $now -eq $script:lastCount
            $script:lastCount = $now
            $same
        } -Timeout $Timeout -IntervalMilliseconds 500 -Because 'the send to stall'
    }
}

Describe 'Disconnect-TcpEndpoint -Timeout' {
    BeforeEach {
        $listener = New-RawListener
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port
        $peer = Receive-RawConnection $listener   # never reads
        $send = $null
    }
    AfterEach {
        Stop-BackgroundScript $send
        Close-RawClient $peer
        $listener.Stop()
        Clear-PSTcpState
    }

    It 'resets a connection whose send is stuck on a peer that never reads, within the timeout, and warns' {
        $send = Start-BackgroundScript {
            param($Manifest, $Connection)
            Import-Module $Manifest
            $line = 'x' * 65535
            1..1000 | ForEach-Object { $line } | Send-TcpLine -Connection $Connection -ErrorAction SilentlyContinue
        } -ArgumentList $manifest, $client
        Wait-Stalled { $client.BytesSent }
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $client | Disconnect-TcpEndpoint -Timeout 1 -WarningVariable warned -WarningAction SilentlyContinue
        $watch.Stop()
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 3 -Because 'timeout 1 s plus a bounded reset'
        $watch.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
        @($warned) | Should -HaveCount 1
        "$($warned[0])" | Should -Match 'did not close gracefully within 1 s'
        "$($warned[0])" | Should -Match 'reset'
        $client.State | Should -Be 'Closed'
        $null = Wait-BackgroundScript $send -Timeout 10   # the stuck send ends too
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
    }

    It 'closes quietly, with no warning, when nothing is stuck and the peer closes too' {
        $server = Start-TcpEchoServer -Port 0
        $echo = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Send-TcpLine $echo 'bye'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $echo | Disconnect-TcpEndpoint -Timeout '5s' -WarningVariable warned
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 3 -Because 'the echo server closes at our FIN'
        @($warned) | Should -HaveCount 0
        $echo.BytesReceived | Should -Be 4 -Because 'the echo of the last line still arrives'
    }
}

Describe 'Stop-TcpServer -Timeout' {
    AfterEach { Close-RawClient $raw; Clear-PSTcpState }

    It 'resets connections whose echo is stuck on a client that never reads, and warns' {
        $server = Start-TcpEchoServer -Port 0
        $raw = New-RawClient $server.Port
        $raw.Blocking = $false
        $chunk = ConvertTo-Bytes (('e' * 1023 + "`n") * 64)
        # Fill both directions: the echo stalls on our unread receive buffer, then the server
        # stops reading and our send buffer fills. Bounded in bytes and time.
        $sent = 0L
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($sent -lt 200MB -and $watch.Elapsed.TotalSeconds -lt 30) {
            try { $sent += $raw.Send($chunk) }
            catch [System.Net.Sockets.SocketException] {
                if (-not $raw.Poll(2000000, [System.Net.Sockets.SelectMode]::SelectWrite)) { break }   # stuck for 2 s
            }
        }
        $sent | Should -BeLessThan 200MB -Because 'the echo must have stalled'
        $watch.Restart()
        $server | Stop-TcpServer -Timeout 1 -WarningVariable warned -WarningAction SilentlyContinue
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 3.5
        @($warned) | Should -HaveCount 1
        "$($warned[0])" | Should -Match '1 of 1 connection\(s\) did not close gracefully within 1 s'
        "$($warned[0])" | Should -Match 'reset'
        $server.State | Should -Be 'Stopped'
        Test-PortBindable $server.Port | Should -BeTrue
    }

    It 'stops quietly when every connection finishes in time' {
        $server = Start-TcpEchoServer -Port 0
        $raw = New-RawClient $server.Port
        Send-RawBytes $raw "one`n"
        $null = Read-RawBytes $raw 4
        # A client that closes when it reads the end: the graceful close waits for its FIN.
        $reader = Start-BackgroundScript {
            param($Socket)
            $buffer = [byte[]]::new(100)
            while ($Socket.Receive($buffer) -gt 0) { }
            $Socket.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
        } -ArgumentList $raw
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $server | Stop-TcpServer -Timeout 5 -WarningVariable warned
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2 -Because 'the peer closed at once'
        @($warned) | Should -HaveCount 0
        $null = Wait-BackgroundScript $reader -Timeout 10
        @($server.Connections) | Should -HaveCount 0
    }
}

Describe 'Graceful close (issue 19 cases 1, 8, 9, 10)' {
    BeforeEach { $client = $null; $other = $null; $listener = $null; $peer = $null }
    AfterEach { Close-RawClient $client, $other, $peer; if ($listener) { $listener.Stop() }; Clear-PSTcpState }

    It 'HandlerStoppingItsOwnServerDoesNotWaitForItself' {
        $server = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message, $Connection)
            if ($Message.Text -eq 'stop') {
                $Connection.Server | Stop-TcpServer -Timeout 5
                'bye'
            } else {
                "echo $($Message.Text)"
            }
        }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "hello`n"
        ConvertFrom-Bytes (Read-RawBytes $client 11) | Should -BeExactly "echo hello`n"
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        Send-RawBytes $client "stop`n"
        # The reply still comes, then the FIN (no reset), well before the 5 s timeout.
        ConvertFrom-Bytes (Read-RawToEnd $client -Timeout 10) | Should -BeExactly "bye`n"
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2.5
        Close-RawSend $client
        Wait-Until { $server.State -eq 'Stopped' } -Timeout 10 -Because 'the stop goes on once the handler returned'
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 3.5
        Test-PortBindable $server.Port | Should -BeTrue
    }

    It 'Stop-TcpServer on a handler server warns exactly when it had to reset, and says which' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) "ok $($Message.Text)" }
        $client = New-RawClient $server.Port   # closes when it sees the end
        $other = New-RawClient $server.Port    # never closes
        Send-RawBytes $client "a`n"; Send-RawBytes $other "b`n"
        $null = Read-RawBytes $client 5; $null = Read-RawBytes $other 5
        Wait-Until { $server.ConnectionCount -eq 2 } -Because 'both connections accepted'
        $connections = $server.Connections
        $polite = Start-BackgroundScript {
            param($Socket)
            $buffer = [byte[]]::new(100)
            while ($Socket.Receive($buffer) -gt 0) { }
            $Socket.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
        } -ArgumentList $client
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $server | Stop-TcpServer -Timeout 1 -WarningVariable warned -WarningAction SilentlyContinue
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2
        $null = Wait-BackgroundScript $polite -Timeout 10
        @($warned) | Should -HaveCount 1
        "$($warned[0])" | Should -Match '1 of 2 connection\(s\) did not close gracefully within 1 s'
        @($connections | Where-Object WasReset) | Should -HaveCount 1
        ($connections | Where-Object WasReset).RemoteEndPoint.Port | Should -Be $other.LocalEndPoint.Port
        @($connections | Where-Object State -ne 'Closed') | Should -HaveCount 0
    }

    It 'Disconnect-TcpEndpoint on a server connection whose echo is stuck resets within the timeout and says so' {
        $server = Start-TcpEchoServer -Port 0 -NoQueue
        $client = New-RawClient $server.Port
        $client.Blocking = $false
        $chunk = ConvertTo-Bytes (('e' * 1023 + "`n") * 64)
        $sent = 0L
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($sent -lt 200MB -and $watch.Elapsed.TotalSeconds -lt 30) {
            try { $sent += $client.Send($chunk) }
            catch [System.Net.Sockets.SocketException] {
                if (-not $client.Poll(2000000, [System.Net.Sockets.SelectMode]::SelectWrite)) { break }   # stuck for 2 s
            }
        }
        $sent | Should -BeLessThan 200MB -Because 'the echo must have stalled'
        $connection = Get-TcpConnection -Server $server
        $watch.Restart()
        $connection | Disconnect-TcpEndpoint -Timeout 1 -WarningVariable warned -WarningAction SilentlyContinue
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 1.75
        $watch.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
        @($warned) | Should -HaveCount 1
        "$($warned[0])" | Should -Match 'reset'
        $connection.WasReset | Should -BeTrue
        $connection.State | Should -Be 'Closed'
    }

    It 'a relay whose target stops reading stops within its timeout, both sides gone, its job done' {
        $listener = New-RawListener
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $listener.LocalEndpoint.Port
        $job = $relay | Receive-TcpMessage -AsJob
        $client = New-RawClient $relay.Port
        $peer = Receive-RawConnection $listener   # never reads
        $client.Blocking = $false
        $chunk = ConvertTo-Bytes (('r' * 1023 + "`n") * 64)
        $sent = 0L
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($sent -lt 200MB -and $watch.Elapsed.TotalSeconds -lt 30) {
            try { $sent += $client.Send($chunk) }
            catch [System.Net.Sockets.SocketException] {
                if (-not $client.Poll(2000000, [System.Net.Sockets.SelectMode]::SelectWrite)) { break }
            }
        }
        $sent | Should -BeLessThan 200MB -Because 'the forwarding must have stalled'
        $handler = $relay.GetType().GetField('_handler', [System.Reflection.BindingFlags]'NonPublic,Instance').GetValue($relay)
        $target = @($handler.TargetConnections)
        $target | Should -HaveCount 1
        $watch.Restart()
        $relay | Stop-TcpServer -Timeout 1 -WarningVariable warned -WarningAction SilentlyContinue
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 1.75
        @($warned) | Should -HaveCount 1
        $relay.State | Should -Be 'Stopped'
        Wait-Until { $target[0].State -eq 'Closed' } -Timeout 2 -Because 'the target side is reset too'
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
        $null = Wait-Job $job -Timeout 10
        $job.State | Should -Be 'Completed'
        Remove-Job $job -Force
    }
}

Describe 'Send-TcpLine -HostName closes its connection on every path' {
    BeforeEach { $server = Start-TcpEchoServer -Port 0; $send = $null; $listener = $null; $peer = $null }
    AfterEach {
        Stop-BackgroundScript $send
        Close-RawClient $peer
        if ($listener) { $listener.Stop() }
        Clear-PSTcpState
    }

    It 'when the pipeline fails upstream' {
        $threw = $false
        try {
            & { 'one'; 'two'; throw 'upstream failure' } | Send-TcpLine -HostName 127.0.0.1 -Port $server.Port
        } catch { $threw = $true }
        $threw | Should -BeTrue
        Wait-Until { $server.TotalConnections -eq 1 -and $server.ConnectionCount -eq 0 } -Timeout 10 -Because 'the server sees the connection close'
        @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $server.Port }) | Should -HaveCount 0 -Because 'it leaves the registry too'
    }

    It 'when the pipeline fails upstream, for Send-TcpMessage too' {
        $threw = $false
        try {
            & { 'one'; throw 'upstream failure' } | Send-TcpMessage -HostName 127.0.0.1 -Port $server.Port
        } catch { $threw = $true }
        $threw | Should -BeTrue
        Wait-Until { $server.TotalConnections -eq 1 -and $server.ConnectionCount -eq 0 } -Timeout 10 -Because 'the server sees the connection close'
        @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $server.Port }) | Should -HaveCount 0
    }

    It 'when the pipeline is stopped (Ctrl+C) during a stuck send' {
        $listener = New-RawListener
        $send = Start-BackgroundScript {
            param($Manifest, $Port)
            Import-Module $Manifest
            $line = 'x' * 65535
            1..1000 | ForEach-Object { $line } | Send-TcpLine -HostName 127.0.0.1 -Port $Port
        } -ArgumentList $manifest, $listener.LocalEndpoint.Port
        $peer = Receive-RawConnection $listener   # never reads, so the send gets stuck
        $port = $listener.LocalEndpoint.Port
        Wait-Until { @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $port }).Count -eq 1 } -Timeout 10
        $connection = Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $port }
        Wait-Stalled { $connection.BytesSent }
        $null = $send.PowerShell.BeginStop($null, $null)
        Wait-Until { $send.Async.IsCompleted } -Timeout 5 -Because 'Ctrl+C ends a stuck send'
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
        $connection.State | Should -Be 'Closed'
        @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $port }) | Should -HaveCount 0
    }

    It 'when the module is removed while its pipeline is still open' {
        # The child checks before it exits (its exit would close the socket anyway).
        $script = Join-Path $TestDrive 'steppable.ps1'
        Set-Content -LiteralPath $script -Value @'
param($ModulePath, $HelpersPath)
Import-Module $ModulePath
Import-Module $HelpersPath
$listener = New-RawListener
$pipeline = { Send-TcpLine -HostName 127.0.0.1 -Port $listener.LocalEndpoint.Port }.GetSteppablePipeline()
$pipeline.Begin($true)
$pipeline.Process('half way')
$peer = Receive-RawConnection $listener
"open: $(@(Get-TcpConnection).Count)"
"closed before: $(Test-RawClosed $peer -Timeout '200ms')"
Remove-Module PSTcp
"closed after: $(Test-RawClosed $peer -Timeout 5)"
'@
        $run = Invoke-ChildPwsh -ArgumentList '-File', $script, '-ModulePath', $manifest, '-HelpersPath', "$PSScriptRoot/TestHelpers.psm1" -Timeout 60
        $run.TimedOut | Should -BeFalse -Because $run.StdErr
        $run.StdOut | Should -Match 'open: 1'
        $run.StdOut | Should -Match 'closed before: False'
        $run.StdOut | Should -Match 'closed after: True' -Because "Remove-Module closes it.`n$($run.StdErr)"
    }
}

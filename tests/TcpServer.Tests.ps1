# Start-TcpServer: scriptblock handlers (answers, order, failures, concurrency) and the
# -Broadcast hub (relay to others, slow receivers cut off). Peers are raw sockets.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)

    function Get-LiveServer { Get-TcpServer -Id $server.Id }

    # Reads what a raw client receives until it has $Lines LF-terminated lines.
    function Read-RawLines([System.Net.Sockets.Socket] $Socket, [int] $Lines, [object] $Timeout = 10) {
        $text = [System.Text.StringBuilder]::new()
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $limit = [TimeSpan]::FromSeconds($Timeout)
        $count = 0
        while ($count -lt $Lines) {
            if ($watch.Elapsed -ge $limit) { throw "Read-RawLines: $count of $Lines lines after $limit`: $text" }
            $one = ConvertFrom-Bytes (Read-RawBytes $Socket 1 -Timeout ($limit - $watch.Elapsed))
            $null = $text.Append($one)
            if ($one -eq "`n") { $count++ }
        }
        , @($text.ToString().TrimEnd("`n") -split "`n")
    }
}

Describe 'Start-TcpServer -ScriptBlock' {
    BeforeEach {
        $client = $null; $other = $null; $server = $null
    }
    AfterEach {
        Close-RawClient $client, $other
        Clear-PSTcpState
    }

    It 'sends the handler''s output back as a line' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) "HELLO $($Message.Text)" }
        $server.State | Should -Be 'Running'
        $server.Port | Should -BeGreaterThan 0
        $client = New-RawClient $server.Port
        Send-RawBytes $client "world`n"
        ConvertFrom-Bytes (Read-RawBytes $client 12) | Should -BeExactly "HELLO world`n"
    }

    It 'sends nothing when the handler outputs nothing' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) if ($Message.Text -ne 'quiet') { "ans $($Message.Text)" } }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "quiet`nnext`n"
        # The first bytes back are the answer to the second line.
        ConvertFrom-Bytes (Read-RawBytes $client 9) | Should -BeExactly "ans next`n"
        (Read-RawAvailable $client -Window '300ms').Length | Should -Be 0
        # Both lines were still queued for consumers.
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $messages.Text | Should -BeExactly @('quiet', 'next')
    }

    It 'sends one line per output object' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) 1..3 | ForEach-Object { "$($Message.Text) $_" } }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "n`n"
        $lines = Read-RawLines $client 3
        $lines | Should -BeExactly @('n 1', 'n 2', 'n 3')
        (Read-RawAvailable $client -Window '200ms').Length | Should -Be 0
    }

    It 'handles the lines of one connection in order' {
        $server = Start-TcpServer -Port 0 -ThrottleLimit 4 -ScriptBlock { param($Message) "re $($Message.Text)" }
        $client = New-RawClient $server.Port
        $builder = [System.Text.StringBuilder]::new()
        foreach ($i in 1..100) { $null = $builder.Append("q$i`n") }
        Send-RawBytes $client $builder.ToString()
        $expected = [string[]](1..100 | ForEach-Object { "re q$_" })
        $expectedBytes = ConvertTo-Bytes (($expected -join "`n") + "`n")
        $answers = ConvertFrom-Bytes (Read-RawBytes $client $expectedBytes.Length -Timeout 20)
        [string[]]($answers.TrimEnd("`n") -split "`n") | Should -BeExactly $expected
    }

    It 'sends nothing for a line whose handler throws, keeps the connection, counts and reports HandlerFailed' {
        $server = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message)
            if ($Message.Text -eq 'boom') { throw 'kaboom' }
            "ok $($Message.Text)"
        }
        $job = $server | Receive-TcpMessage -AsJob
        $client = New-RawClient $server.Port
        Send-RawBytes $client "a`nboom`nb`n"
        ConvertFrom-Bytes (Read-RawBytes $client 10) | Should -BeExactly "ok a`nok b`n"
        # Still open and served.
        Send-RawBytes $client "c`n"
        ConvertFrom-Bytes (Read-RawBytes $client 5) | Should -BeExactly "ok c`n"
        Wait-Until { (Get-LiveServer).ErrorCount -ge 1 }
        (Get-LiveServer).ErrorCount | Should -Be 1
        "$((Get-LiveServer).LastError.Kind)" | Should -Be 'HandlerFailed'
        (Get-LiveServer).ConnectionCount | Should -Be 1
        Wait-Until { $job.Error.Count -ge 1 } -Because 'the consumer job to report the handler failure'
        $job.Error[0].FullyQualifiedErrorId | Should -BeLike 'HandlerFailed*'
        "$($job.Error[0])" | Should -BeLike '*kaboom*'
        $job.State | Should -Be 'Running'
    }

    It 'does not let a slow handler on one connection delay another connection (-ThrottleLimit 2)' {
        $server = Start-TcpServer -Port 0 -ThrottleLimit 2 -ScriptBlock {
            param($Message)
            if ($Message.Text -eq 'slow') { Start-Sleep -Seconds 2 }   # the slowness under test
            "done $($Message.Text)"
        }
        $client = New-RawClient $server.Port
        $other = New-RawClient $server.Port
        Send-RawBytes $client "slow`n"
        Wait-Until { (Get-LiveServer).MessagesReceived -ge 1 } -Because 'the slow line to be taken'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        Send-RawBytes $other "fast`n"
        ConvertFrom-Bytes (Read-RawBytes $other 10 -Timeout 5) | Should -BeExactly "done fast`n"
        $watch.Stop()
        $client.Available | Should -Be 0 -Because 'the fast answer came while the slow handler was still running'
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 1.5
        ConvertFrom-Bytes (Read-RawBytes $client 10 -Timeout 10) | Should -BeExactly "done slow`n"
        # Both lines were queued for consumers as well.
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        ($messages.Text | Sort-Object) | Should -BeExactly @('fast', 'slow')
    }
}

Describe 'Start-TcpServer -Broadcast' {
    BeforeEach {
        $a = $null; $b = $null; $c = $null; $slow = $null
    }
    AfterEach {
        Close-RawClient $a, $b, $c, $slow
        Clear-PSTcpState
    }

    It 'relays a line from A to B and C, not back to A, and queues it' {
        $server = Start-TcpServer -Port 0 -Broadcast
        $a = New-RawClient $server.Port
        $b = New-RawClient $server.Port
        $c = New-RawClient $server.Port
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 3 } -Because 'all three to be connected'
        Send-RawBytes $a "hi all`n"
        ConvertFrom-Bytes (Read-RawBytes $b 7) | Should -BeExactly "hi all`n"
        ConvertFrom-Bytes (Read-RawBytes $c 7) | Should -BeExactly "hi all`n"
        (Read-RawAvailable $a -Window '300ms').Length | Should -Be 0 -Because 'the sender does not get its own line'
        Send-RawBytes $b "from b`n"
        ConvertFrom-Bytes (Read-RawBytes $a 7) | Should -BeExactly "from b`n"
        ConvertFrom-Bytes (Read-RawBytes $c 7) | Should -BeExactly "from b`n"
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $messages.Text | Should -BeExactly @('hi all', 'from b')
    }

    It 'disconnects a receiver that never reads (-MaxSendQueueBytes 65536) while others keep receiving' {
        $server = Start-TcpServer -Port 0 -Broadcast -MaxSendQueueBytes 65536
        $a = New-RawClient $server.Port
        $b = New-RawClient $server.Port
        $slow = New-RawClient $server.Port
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 3 }
        # 8 KiB of 1 KiB lines per round: well under the limit, so a receiver that keeps up
        # is never that far behind.
        $chunk = ConvertTo-Bytes ((('r' * 1023) + "`n") * 8)
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $rounds = 0
        # Bounded: 3200 rounds (25 MiB) or 30 s, until the slow receiver is cut.
        while ((Get-LiveServer).ErrorCount -eq 0 -and $rounds -lt 3200 -and $watch.Elapsed.TotalSeconds -lt 30) {
            Send-RawBytes $a $chunk
            $null = Read-RawBytes $b $chunk.Length
            $rounds++
        }
        (Get-LiveServer).ErrorCount | Should -BeGreaterOrEqual 1 -Because "the slow receiver must be cut (after $rounds rounds)"
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 2 } -Because 'the slow receiver is disconnected'
        @(Get-TcpConnection -Server $server).RemoteEndPoint.Port | Should -Not -Contain $slow.LocalEndPoint.Port
        # Reading now, it gets what the kernel still held, then the end.
        Test-RawClosed $slow -Timeout 10 | Should -BeTrue -Because 'the slow receiver sees its connection end'
        "$((Get-LiveServer).LastError)" | Should -Not -BeNullOrEmpty
        # The others still relay both ways.
        Send-RawBytes $a "after`n"
        ConvertFrom-Bytes (Read-RawBytes $b 6) | Should -BeExactly "after`n"
        Send-RawBytes $b "back`n"
        ConvertFrom-Bytes (Read-RawBytes $a 5) | Should -BeExactly "back`n"
    }

    It 'takes a burst bigger than -MaxSendQueueBytes for a receiver that keeps up' {
        $server = Start-TcpServer -Port 0 -Broadcast -MaxSendQueueBytes 65536
        $a = New-RawClient $server.Port
        $b = New-RawClient $server.Port
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 2 }
        # One 96 KiB write: the receiver's outbox is empty when it arrives, so it isn't behind.
        $burst = ConvertTo-Bytes ((('b' * 1023) + "`n") * 96)
        Send-RawBytes $a $burst
        $received = Read-RawBytes $b $burst.Length
        $received.Length | Should -Be $burst.Length
        (Get-LiveServer).ErrorCount | Should -Be 0
        (Get-LiveServer).ConnectionCount | Should -Be 2
    }
}

# Connection faults and shutdown under load: resets, half-closes, stopping with busy clients,
# flush on disconnect, errors per piped item, lossless Wait mode end to end, clients that
# never read, and module removal with everything alive.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $repoRoot = (Resolve-Path "$PSScriptRoot/..").ProviderPath
    $modulePath = Join-Path $repoRoot 'out/PSTcp/PSTcp.psd1'
    $seconds10 = [TimeSpan]::FromSeconds(10)

    function Get-LiveServer { Get-TcpServer -Id $server.Id }

    # A raw client on a runspace of its own that sends $Lines lines "<Tag>-<n>" (n = 1..Lines)
    # in batches, reading its echoes as it goes, until done, the send fails, or 30 s pass.
    # Then it reads to the end and outputs a summary: Sent, Echoed, End ('eof', 'reset' or
    # 'open').
    $RawSender = {
        param($Port, $Tag, $Lines, $Batch, $HalfClose)
        $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $s.NoDelay = $true
        $s.SendTimeout = 5000
        $s.Connect([System.Net.IPAddress]::Loopback, $Port)
        'connected'
        $utf8 = [System.Text.UTF8Encoding]::new($false)
        $buffer = [byte[]]::new(65536)
        $echoed = 0L
        $sent = 0
        $end = 'open'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        try {
            while ($sent -lt $Lines -and $watch.Elapsed.TotalSeconds -lt 30) {
                $sb = [System.Text.StringBuilder]::new()
                $last = [Math]::Min($Lines, $sent + $Batch)
                for ($n = $sent + 1; $n -le $last; $n++) { $null = $sb.Append($Tag).Append('-').Append($n).Append("`n") }
                $bytes = $utf8.GetBytes($sb.ToString())
                $off = 0
                while ($off -lt $bytes.Length) { $off += $s.Send($bytes, $off, $bytes.Length - $off, 'None') }
                $sent = $last
                while ($s.Available -gt 0) {
                    $n = $s.Receive($buffer, 0, $buffer.Length, 'None')
                    if ($n -eq 0) { $end = 'eof'; break }
                    $echoed += $n
                }
                if ($end -ne 'open') { break }
            }
        } catch { $end = 'reset' }
        if ($HalfClose -and $end -eq 'open') { try { $s.Shutdown('Send') } catch { } }
        if ($end -eq 'open') {
            try {
                $s.ReceiveTimeout = 15000
                while ($true) {
                    $n = $s.Receive($buffer, 0, $buffer.Length, 'None')
                    if ($n -eq 0) { $end = 'eof'; break }
                    $echoed += $n
                }
            } catch [System.Net.Sockets.SocketException] {
                $end = if ($_.Exception.SocketErrorCode -eq 'TimedOut') { 'open' } else { 'reset' }
            }
        }
        $s.Dispose()
        [pscustomobject]@{ Tag = $Tag; Sent = $sent; Echoed = $echoed; End = $end }
    }
}

Describe 'Peer faults' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "fault-$([guid]::NewGuid().ToString('N'))"
        $client = $null; $other = $null
    }
    AfterEach {
        Close-RawClient $client, $other
        Clear-PSTcpState
    }

    It 'survives a reset mid-line: the next client echoes and the partial line is not queued' {
        $client = New-RawClient $server.Port
        Send-RawBytes $client 'half a line, never finish'
        Wait-Until { (Get-LiveServer).BytesReceived -ge 25 } -Because 'the partial line to be read'
        Reset-RawClient $client
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 } -Because 'the reset connection to be cleaned up'
        (Get-LiveServer).State | Should -Be 'Running'

        $other = New-RawClient $server.Port
        Send-RawBytes $other "next`n"
        ConvertFrom-Bytes (Read-RawBytes $other 5) | Should -BeExactly "next`n"
        $messages = @(Receive-TcpMessage -Server $server -Timeout ([TimeSpan]::FromMilliseconds(500)))
        $messages.Text | Should -BeExactly @('next') -Because 'a line cut by a reset is dropped, not queued'
        (Get-LiveServer).MessagesReceived | Should -Be 1
    }

    It 'answers ping then half-close with the echo then EOF, and queues ping once' {
        $client = New-RawClient $server.Port
        Send-RawBytes $client "ping`n"
        Close-RawSend $client
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "ping`n"
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 }
        $messages = @(Receive-TcpMessage -Server $server -Timeout ([TimeSpan]::FromMilliseconds(500)))
        $messages.Text | Should -BeExactly @('ping')
    }

    It 'delivers a final fragment sent before FIN' {
        $client = New-RawClient $server.Port
        Send-RawBytes $client "whole`nfragment"
        Close-RawSend $client
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "whole`nfragment"
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $messages.Text | Should -BeExactly @('whole', 'fragment')
    }
}

Describe 'Stop-TcpServer with busy clients' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "busy-$([guid]::NewGuid().ToString('N'))" -QueueCapacity 1000000
        $job = $server | Receive-TcpMessage -AsJob
        $senders = @()
    }
    AfterEach {
        foreach ($h in $senders) { Stop-BackgroundScript $h }
        Clear-PSTcpState
    }

    It 'returns within 10 s; every counted line reaches the consumer job, which completes; clients see the end' {
        $senders = foreach ($tag in 'a', 'b', 'c') {
            Start-BackgroundScript $RawSender -ArgumentList $server.Port, $tag, 200000, 200, $false
        }
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 3 -and (Get-LiveServer).MessagesReceived -ge 3000 } -Timeout 20 -Because 'all three clients to be connected and sending'

        # The clients don't read, so they don't see the FIN: the graceful close reads (and
        # queues) what they still send until its timeout, then resets them.
        $before = $server.MessagesReceived
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $server | Stop-TcpServer -Timeout 1 -WarningAction SilentlyContinue
        $watch.Stop()
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 3
        $before | Should -BeLessThan 600000 -Because 'the clients were still sending when the server stopped'
        $server.State | Should -Be 'Stopped'
        $counted = $server.MessagesReceived

        $null = Wait-Job $job -Timeout 15
        $job.State | Should -Be 'Completed'
        $messages = @(Receive-Job $job)
        $messages.Count | Should -Be $counted -Because 'every line the server counted is handed to the consumer'
        # Per connection, in order, nothing twice.
        foreach ($group in $messages | Group-Object ConnectionId) {
            $numbers = [long[]]@($group.Group | ForEach-Object { [long]($_.Text -split '-')[1] })
            [System.Linq.Enumerable]::SequenceEqual($numbers, [long[]](1..$numbers.Count)) | Should -BeTrue
        }

        $results = foreach ($h in $senders) { @(Wait-BackgroundScript $h -Timeout 40) | Select-Object -Last 1 }
        $senders = @()
        foreach ($r in $results) {
            $r.End | Should -BeIn @('eof', 'reset') -Because "client $($r.Tag) must see its connection end"
        }
    }
}

Describe 'Client flush and errors' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "flush-$([guid]::NewGuid().ToString('N'))" -QueueCapacity 20000
    }
    AfterEach { Clear-PSTcpState }

    It 'Disconnect-TcpEndpoint right after sending 10,000 lines flushes them all first' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        1..10000 | ForEach-Object { "flush $_" } | Send-TcpLine -Connection $c
        $c | Disconnect-TcpEndpoint
        $messages = @(Receive-TcpMessage -Server $server -Count 10000 -Timeout ([TimeSpan]::FromSeconds(30)))
        $messages | Should -HaveCount 10000
        $messages[0].Text | Should -BeExactly 'flush 1'
        $messages[-1].Text | Should -BeExactly 'flush 10000'
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 }
        (Get-LiveServer).MessagesReceived | Should -Be 10000
    }

    It 'writes one non-terminating ConnectionClosed error per piped line on a closed connection' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        $c | Disconnect-TcpEndpoint
        $ev = $null
        $threw = $false
        try {
            'one', 'two', 'three' | Send-TcpLine -Connection $c -ErrorAction SilentlyContinue -ErrorVariable ev
        } catch { $threw = $true }
        $threw | Should -BeFalse
        @($ev) | Should -HaveCount 3
        foreach ($e in @($ev)) { $e.FullyQualifiedErrorId | Should -BeLike 'ConnectionClosed*' }
    }

    It 'Receive-TcpMessage -Count 5 -Timeout 1s with 2 available outputs 2 and a ReceiveTimeout error' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        Send-TcpLine -Connection $c -Line 'first', 'second'
        Wait-Until { $c.MessagesReceived -eq 2 }
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Count 5 -Timeout ([TimeSpan]::FromSeconds(1)) }
        $r.Output.Text | Should -BeExactly @('first', 'second')
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout*'
        $r.Elapsed.TotalSeconds | Should -BeLessThan 5
    }
}

Describe 'QueueFullMode Wait end to end' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 100 -QueueFullMode Wait -Name "wait-$([guid]::NewGuid().ToString('N'))"
        $job = $server | Receive-TcpMessage -AsJob
        $senders = @(); $stopper = $null
    }
    AfterEach {
        foreach ($h in @($senders) + @($stopper)) { Stop-BackgroundScript $h }
        Clear-PSTcpState
    }

    It 'loses nothing: 4 clients x 5,000 lines through a queue of 100 reach the consumer, per connection in order' {
        $senders = foreach ($tag in 'w', 'x', 'y', 'z') {
            Start-BackgroundScript $RawSender -ArgumentList $server.Port, $tag, 5000, 500, $true
        }
        # Stops the server once every line was queued (or after 60 s, so Receive-Job -Wait ends).
        $stopper = Start-BackgroundScript -ArgumentList $modulePath, $server.Id {
            param($ModulePath, $Id)
            Import-Module $ModulePath
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            while ((Get-TcpServer -Id $Id).MessagesReceived -lt 20000 -and $watch.Elapsed.TotalSeconds -lt 60) {
                Start-Sleep -Milliseconds 20
            }
            Stop-TcpServer -Id $Id
            'stopped'
        }
        $messages = @(Receive-Job $job -Wait)
        $null = Wait-BackgroundScript $stopper -Timeout 10
        $stopper = $null

        $messages.Count | Should -Be 20000
        $server.MessagesDropped | Should -Be 0
        $groups = @($messages | Group-Object { ($_.Text -split '-')[0] })
        $groups | Should -HaveCount 4
        foreach ($group in $groups) {
            $expected = [string[]](1..5000 | ForEach-Object { "$($group.Name)-$_" })
            [System.Linq.Enumerable]::SequenceEqual([string[]]$group.Group.Text, $expected) | Should -BeTrue -Because "connection $($group.Name) is in order"
            [System.Linq.Enumerable]::SequenceEqual([long[]]$group.Group.Sequence, [long[]](1..5000)) | Should -BeTrue
        }
        $results = foreach ($h in $senders) { @(Wait-BackgroundScript $h -Timeout 30) | Select-Object -Last 1 }
        $senders = @()
        foreach ($r in $results) {
            $r.Sent | Should -Be 5000
            $expectedBytes = 0
            foreach ($n in 1..5000) { $expectedBytes += "$($r.Tag)-$n`n".Length }
            $r.End | Should -Be 'eof'
            $r.Echoed | Should -Be $expectedBytes -Because 'every line is echoed'
        }
    }
}

Describe 'A client that never reads its echoes' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "noread-$([guid]::NewGuid().ToString('N'))"
        $hog = $null; $fast = $null
    }
    AfterEach {
        Close-RawClient $hog, $fast
        Clear-PSTcpState
    }

    It 'does not stall another client''s echo' {
        $hog = New-RawClient $server.Port
        $hog.SendTimeout = 2000
        $hog.ReceiveBufferSize = 4096
        $line = ('h' * 1023) + "`n"
        $chunk = ConvertTo-Bytes ($line * 256)   # 256 KiB of lines
        $sentKiB = 0
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # Bounded: 64 MiB or 20 s, or until the send blocks (the server stopped reading).
        while ($sentKiB -lt 64MB / 1KB -and $watch.Elapsed.TotalSeconds -lt 20) {
            try { Send-RawBytes $hog $chunk; $sentKiB += 256 } catch { break }
        }
        $fast = New-RawClient $server.Port
        $echo = [System.Diagnostics.Stopwatch]::StartNew()
        Send-RawBytes $fast "quick`n"
        ConvertFrom-Bytes (Read-RawBytes $fast 6 -Timeout 5) | Should -BeExactly "quick`n"
        $echo.Elapsed.TotalSeconds | Should -BeLessThan 5
        (Get-LiveServer).State | Should -Be 'Running'
    }
}

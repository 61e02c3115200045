# Framing, limits and bad input (about_PSTcp, LIMITS): line length, connection count, idle timeout and slow
# clients, on the server and on the client side. Raw sockets play the misbehaving peers.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)

    # $server is the calling test's server (dynamic scope).
    function Get-LiveServer { Get-TcpServer -Id $server.Id }

    # A fresh raw client gets its line echoed: the server still serves others.
    function Assert-Echoes([int] $Port, [string] $Text = 'still serving') {
        $probe = New-RawClient $Port
        try {
            Send-RawBytes $probe "$Text`n"
            ConvertFrom-Bytes (Read-RawBytes $probe ($Text.Length + 1)) | Should -BeExactly "$Text`n"
        } finally { Close-RawClient $probe }
    }
}

Describe 'Server -MaxLineLength' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -MaxLineLength 100 -Name "limit-$([guid]::NewGuid().ToString('N'))"
        $job = $server | Receive-TcpMessage -AsJob
        $client = $null; $other = $null
    }
    AfterEach {
        Close-RawClient $client, $other
        Clear-PSTcpState
    }

    It 'closes a connection that sends 101 bytes without LF, records LineTooLong, and keeps serving others' {
        $other = New-RawClient $server.Port
        $client = New-RawClient $server.Port
        Send-RawBytes $client ('x' * 101)
        # More data after the limit: the connection is closed either way.
        try { Send-RawBytes $client ('y' * 50) } catch { }
        Test-RawClosed $client -Timeout 10 | Should -BeTrue -Because 'the over-long line closes that connection'

        Wait-Until { (Get-LiveServer).ErrorCount -ge 1 } -Because 'the error to be recorded'
        $live = Get-LiveServer
        $live.ErrorCount | Should -Be 1
        "$($live.LastError.Kind)" | Should -Be 'LineTooLong'
        $live.State | Should -Be 'Running'

        Wait-Until { $job.Error.Count -ge 1 } -Because 'the consumer job to report the error'
        $job.Error[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong*'
        $job.State | Should -Be 'Running' -Because 'one bad connection does not end the consumer'

        # The connection that was already open and a new one both still echo.
        Send-RawBytes $other "other`n"
        ConvertFrom-Bytes (Read-RawBytes $other 6) | Should -BeExactly "other`n"
        Assert-Echoes $server.Port
        # Nothing of the over-long line was queued.
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 2 }
        $bag = [System.Collections.Generic.List[object]]::new()
        Wait-Until { foreach ($m in @(Receive-Job $job -ErrorAction SilentlyContinue)) { $bag.Add($m) }; $bag.Count -ge 2 } -Because 'the two good lines to reach the job'
        $texts = @($bag | ForEach-Object Text)
        $texts | Should -BeExactly @('other', 'still serving')
        $texts | Should -Not -Contain ('x' * 101)
        ($texts | Where-Object { $_ -like 'x*' }) | Should -BeNullOrEmpty
    }

    It 'accepts a line of exactly 100 bytes' {
        $client = New-RawClient $server.Port
        $line = 'z' * 100
        Send-RawBytes $client "$line`n"
        ConvertFrom-Bytes (Read-RawBytes $client 101) | Should -BeExactly "$line`n"
        # CR before LF is not part of the line: 100 bytes + CRLF is within the limit too.
        Send-RawBytes $client "$line`r`n"
        ConvertFrom-Bytes (Read-RawBytes $client 102) | Should -BeExactly "$line`r`n"
        $messages = [System.Collections.Generic.List[object]]::new()
        Wait-Until { foreach ($m in @(Receive-Job $job)) { $messages.Add($m) }; $messages.Count -ge 2 }
        $messages.Text | Should -BeExactly @($line, $line)
        (Get-LiveServer).ErrorCount | Should -Be 0
    }
}

Describe 'A 100 MB stream without a newline' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "flood-$([guid]::NewGuid().ToString('N'))"
        $client = $null
    }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'costs only its connection, with bounded memory' {
        [System.GC]::Collect(); [System.GC]::WaitForPendingFinalizers(); [System.GC]::Collect()
        $before = [System.Diagnostics.Process]::GetCurrentProcess().WorkingSet64
        $client = New-RawClient $server.Port
        $client.SendTimeout = 5000
        $chunk = [byte[]]::new(1MB)
        [System.Array]::Fill($chunk, [byte]0x41)
        $sentMB = 0
        $failed = $false
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # Bounded: at most 100 chunks and 60 s; the send fails once the server closes.
        while ($sentMB -lt 100 -and $watch.Elapsed.TotalSeconds -lt 60) {
            try {
                Send-RawBytes $client $chunk
                $sentMB++
            } catch {
                $failed = $true
                break
            }
        }
        $failed | Should -BeTrue -Because "the server must close the connection long before 100 MB (sent $sentMB MB)"
        Test-RawClosed $client -Timeout 10 | Should -BeTrue
        Wait-Until { (Get-LiveServer).ErrorCount -ge 1 }
        "$((Get-LiveServer).LastError.Kind)" | Should -Be 'LineTooLong'
        (Get-LiveServer).State | Should -Be 'Running'
        Assert-Echoes $server.Port

        [System.GC]::Collect(); [System.GC]::WaitForPendingFinalizers(); [System.GC]::Collect()
        $after = [System.Diagnostics.Process]::GetCurrentProcess().WorkingSet64
        ($after - $before) | Should -BeLessThan 64MB -Because 'memory stays bounded by the line limit'
    }
}

Describe 'Server -MaxConnections' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -MaxConnections 2 -Name "maxconn-$([guid]::NewGuid().ToString('N'))"
        $a = $null; $b = $null; $c = $null; $d = $null
    }
    AfterEach {
        Close-RawClient $a, $b, $c, $d
        Clear-PSTcpState
    }

    It 'closes the third connection at once, counts it, and serves a new one after the two close' {
        $a = New-RawClient $server.Port
        $b = New-RawClient $server.Port
        Send-RawBytes $a "a`n"; ConvertFrom-Bytes (Read-RawBytes $a 2) | Should -BeExactly "a`n"
        Send-RawBytes $b "b`n"; ConvertFrom-Bytes (Read-RawBytes $b 2) | Should -BeExactly "b`n"
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 2 }

        $c = New-RawClient $server.Port
        Test-RawClosed $c -Timeout 5 | Should -BeTrue -Because 'the connection over the limit is closed at once'
        Wait-Until { (Get-LiveServer).ConnectionsRefused -eq 1 }
        (Get-LiveServer).ConnectionsRefused | Should -Be 1
        (Get-LiveServer).ConnectionCount | Should -Be 2
        # The two admitted clients still echo.
        Send-RawBytes $a "a2`n"; ConvertFrom-Bytes (Read-RawBytes $a 3) | Should -BeExactly "a2`n"

        Close-RawClient $a, $b
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 } -Because 'the count to return to 0'
        $d = New-RawClient $server.Port
        Send-RawBytes $d "d`n"
        ConvertFrom-Bytes (Read-RawBytes $d 2) | Should -BeExactly "d`n"
        (Get-LiveServer).ConnectionsRefused | Should -Be 1
    }
}

Describe 'Server -IdleTimeout' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -IdleTimeout 00:00:01 -Name "idle-$([guid]::NewGuid().ToString('N'))"
        $silent = $null; $chatty = $null
    }
    AfterEach {
        Close-RawClient $silent, $chatty
        Clear-PSTcpState
    }

    It 'closes a silent client but keeps one that sends a line every 300 ms' {
        $silent = New-RawClient $server.Port
        $chatty = New-RawClient $server.Port
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # ~2.1 s of traffic on the chatty connection: longer than the idle timeout.
        for ($i = 1; $i -le 7; $i++) {
            Send-RawBytes $chatty "tick $i`n"
            ConvertFrom-Bytes (Read-RawBytes $chatty 7 -Timeout 5) | Should -BeExactly "tick $i`n"
            Start-Sleep -Milliseconds 300   # the pacing under test, not a wait for a condition
        }
        $watch.Elapsed.TotalSeconds | Should -BeGreaterThan 1.5
        Test-RawClosed $silent -Timeout 5 | Should -BeTrue -Because 'a connection silent for 1 s is closed'
        # The chatty one is still open and served.
        Send-RawBytes $chatty "last`n"
        ConvertFrom-Bytes (Read-RawBytes $chatty 5) | Should -BeExactly "last`n"
        (Get-LiveServer).ConnectionCount | Should -Be 1
    }
}

Describe 'Client -MaxLineLength' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "climit-$([guid]::NewGuid().ToString('N'))"
    }
    AfterEach { Clear-PSTcpState }

    It 'reports LineTooLong for an echoed 20-byte line over a limit of 10, and closes' {
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -MaxLineLength 10
        Send-TcpLine -Connection $c -Line ('q' * 20)
        $r = Invoke-Captured { Receive-TcpMessage -Connection $c -Timeout ([TimeSpan]::FromSeconds(5)) }
        $r.Errors.Count | Should -BeGreaterThan 0 -Because 'an over-long line is an error, not a silent truncation'
        @($r.Errors | Where-Object FullyQualifiedErrorId -like 'LineTooLong*').Count | Should -BeGreaterThan 0
        $r.Output | Should -HaveCount 0 -Because 'no truncated message is delivered'
        $r.Elapsed.TotalSeconds | Should -BeLessThan 4 -Because 'the receive ends with the connection, not at its timeout'
        Wait-Until { $c.State -eq 'Closed' } -Because 'the connection closes on the over-long line'
        # The server sees its peer gone.
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 }
    }
}

Describe 'A slow client' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "slow-$([guid]::NewGuid().ToString('N'))"
        $slow = $null; $fast = $null
    }
    AfterEach {
        Stop-BackgroundScript $slow
        Close-RawClient $fast
        Clear-PSTcpState
    }

    It 'sending 1 byte per 100 ms does not delay another client''s echo' {
        # The slow sender runs on its own runspace: 10 bytes, 100 ms apart, then LF.
        $slow = Start-BackgroundScript -ArgumentList $server.Port {
            param($Port)
            $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
            $s.NoDelay = $true
            $s.Connect([System.Net.IPAddress]::Loopback, $Port)
            'connected'
            for ($i = 0; $i -lt 10; $i++) {
                $null = $s.Send([byte[]]@(0x73))
                Start-Sleep -Milliseconds 100
            }
            $null = $s.Send([byte[]]@(0x0A))
            $buffer = [byte[]]::new(11); $got = 0
            $s.ReceiveTimeout = 5000
            while ($got -lt 11) { $n = $s.Receive($buffer, $got, 11 - $got, 'None'); if ($n -eq 0) { break }; $got += $n }
            $s.Dispose()
            "echoed $got"
        }
        Wait-Until { $slow.Output.Count -ge 1 } -Because 'the slow client to connect'
        Wait-Until { (Get-LiveServer).BytesReceived -ge 1 } -Because 'the slow client to start sending'
        $fast = New-RawClient $server.Port
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        Send-RawBytes $fast "quick`n"
        ConvertFrom-Bytes (Read-RawBytes $fast 6 -Timeout 5) | Should -BeExactly "quick`n"
        $watch.Stop()
        $slowDone = $slow.Async.IsCompleted
        $slowDone | Should -BeFalse -Because 'the fast echo must arrive while the slow client is still sending'
        $output = Wait-BackgroundScript $slow -Timeout 10
        $slow = $null
        $output | Should -Contain 'echoed 11'
        $messages = @(Receive-TcpMessage -Server $server -Count 2 -Timeout $seconds10)
        $messages.Text | Should -BeExactly @('quick', 'ssssssssss')
    }
}

# Send-TcpLine shows Write-Progress once sending has taken more than a second, and not for a
# quick send. The peer here is a raw listener that reads slowly (that slowness is the
# behaviour under test), so a large send must take a while.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $manifest = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").Path

    # Sends $Lines on $Connection in another runspace; its progress records are collected.
    function Start-Send($Connection, [string[]] $Lines) {
        $ps = [PowerShell]::Create()
        $null = $ps.AddScript({
                param($Manifest, $Connection, $Lines)
                Import-Module $Manifest
                Send-TcpLine -Connection $Connection -Line $Lines
            }.ToString()).AddArgument($manifest).AddArgument($Connection).AddArgument($Lines)
        [pscustomobject]@{ PowerShell = $ps; Async = $ps.BeginInvoke() }
    }
}

Describe 'Send-TcpLine progress' {
    BeforeEach {
        $listener = New-RawListener
        $connection = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $listener.LocalEndpoint.Port
        $peer = Receive-RawConnection $listener
        $send = $null
    }
    AfterEach {
        if ($send) { $null = $send.PowerShell.Stop(); $send.PowerShell.Dispose() }
        Close-RawClient $peer
        $listener.Stop()
        Clear-PSTcpState
    }

    It 'shows progress when sending takes more than a second, and completes it' {
        # 400,000 lines of 40 bytes: 16 MB, far more than the kernel buffers between the two.
        $lines = [string[]]@(1..400000 | ForEach-Object { 'progress line {0:D24}' -f $_ })
        $total = 0L
        foreach ($l in $lines) { $total += $l.Length + 1 }
        $send = Start-Send $connection $lines
        $buffer = [byte[]]::new(256KB)
        $received = 0L
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        # Bounded: read everything, ~2.5 MB/s, within 30 s.
        while ($received -lt $total -and $watch.Elapsed.TotalSeconds -lt 30) {
            $n = $peer.Receive($buffer)
            if ($n -eq 0) { break }
            $received += $n
            Start-Sleep -Milliseconds 100
        }
        $received | Should -Be $total
        $send.Async.AsyncWaitHandle.WaitOne(10000) | Should -BeTrue
        $send.PowerShell.EndInvoke($send.Async)
        $progress = @($send.PowerShell.Streams.Progress)
        $progress.Count | Should -BeGreaterThan 1 -Because 'a send of several seconds reports progress'
        $progress[0].Activity | Should -Be 'Send-TcpLine'
        $progress[0].StatusDescription | Should -Match 'lines sent'
        $progress[-1].RecordType | Should -Be 'Completed'
    }

    It 'shows no progress for a quick send' {
        $send = Start-Send $connection ([string[]]@(1..1000 | ForEach-Object { "quick $_" }))
        $send.Async.AsyncWaitHandle.WaitOne(10000) | Should -BeTrue
        $send.PowerShell.EndInvoke($send.Async)
        @($send.PowerShell.Streams.Progress).Count | Should -Be 0
    }
}

Describe 'Send-TcpLine -Path progress' {
    BeforeEach {
        $listener = New-RawListener
        $connection = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $listener.LocalEndpoint.Port
        $peer = Receive-RawConnection $listener
        $send = $null
    }
    AfterEach {
        if ($send) { $null = $send.PowerShell.Stop(); $send.PowerShell.Dispose() }
        Close-RawClient $peer
        $listener.Stop()
        Clear-PSTcpState
    }

    It 'shows the percentage sent and the seconds left, from the file size' {
        # 12 MB read at ~5 MB/s by the peer: a few seconds of progress.
        $file = Join-Path $TestDrive 'big.txt'
        [IO.File]::WriteAllText($file, (('z' * 1023 + "`n") * 12288))
        $total = (Get-Item $file).Length
        $ps = [PowerShell]::Create()
        $null = $ps.AddScript({
                param($Manifest, $Connection, $Path)
                Import-Module $Manifest
                Send-TcpLine -Connection $Connection -Path $Path
            }.ToString()).AddArgument($manifest).AddArgument($connection).AddArgument($file)
        $send = [pscustomobject]@{ PowerShell = $ps; Async = $ps.BeginInvoke() }
        $buffer = [byte[]]::new(256KB)
        $received = 0L
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($received -lt $total -and $watch.Elapsed.TotalSeconds -lt 30) {
            $n = $peer.Receive($buffer)
            if ($n -eq 0) { break }
            $received += $n
            Start-Sleep -Milliseconds 50   # the slow reader under test
        }
        $received | Should -Be $total
        $send.Async.AsyncWaitHandle.WaitOne(10000) | Should -BeTrue
        $send.PowerShell.EndInvoke($send.Async)
        $running = @($send.PowerShell.Streams.Progress | Where-Object RecordType -eq 'Processing')
        $running.Count | Should -BeGreaterThan 0
        $running | ForEach-Object { $_.PercentComplete | Should -BeIn (0..100) }
        @($running | Where-Object { $_.PercentComplete -gt 0 -and $_.PercentComplete -lt 100 }).Count | Should -BeGreaterThan 0
        @($running | Where-Object SecondsRemaining -gt 0).Count | Should -BeGreaterThan 0 -Because 'the time left is known from the file size'
        $running[0].StatusDescription | Should -Match '^[\d,]+ lines sent from .*big\.txt \([\d.]+ [KM]?B of 12 MB\)$'
        ($running | Select-Object -Last 1).StatusDescription | Should -Match '\d,\d{3} lines' -Because 'counts use thousands separators'
    }
}

Describe 'Send-TcpLine stalled behind its own full queue' {
    AfterEach { Stop-BackgroundScript $send; Clear-PSTcpState }

    It 'warns, naming the cause and the fix, and the fix lets the send finish losslessly' {
        # Lossless client, a consumer job nobody receives from, an echo server: the job's
        # read-ahead and the queue fill, the client stops reading, the echo stalls, and so does
        # the send. 40 MB is far more than the socket buffers between them.
        $file = Join-Path $TestDrive 'stall.txt'
        $lines = 5000
        [IO.File]::WriteAllText($file, (('y' * 8191 + "`n") * $lines))
        $server = Start-TcpEchoServer -Port 0
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -QueueFullMode Wait -QueueCapacity 100
        $job = Receive-TcpMessage -Connection $client -AsJob
        $send = Start-BackgroundScript {
            param($Manifest, $Connection, $Path)
            Import-Module $Manifest
            Send-TcpLine $Connection -Path $Path
            'sent'
        } -ArgumentList $manifest, $client, $file
        Wait-Until { $send.PowerShell.Streams.Warning.Count -gt 0 } -Timeout 60 -Because 'a stalled send warns within a few seconds'
        $warning = $send.PowerShell.Streams.Warning[0].Message
        $warning | Should -Match 'no progress for \d+ s'
        $warning | Should -Match 'queue is full \(100 of 100 messages, -QueueFullMode Wait\)'
        $warning | Should -Match 'Receive-Job'
        $warning | Should -Match 'thread job'
        $send.Async.IsCompleted | Should -BeFalse -Because 'the send is still waiting, losslessly'

        # The fix: take the messages. Bounded in time; Receive-Job returns at once.
        $got = 0
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        while ($got -lt $lines -and $watch.Elapsed.TotalSeconds -lt 60) { $got += @(Receive-Job $job).Count }
        $got | Should -Be $lines
        Wait-BackgroundScript $send -Timeout 30 | Should -Be 'sent'
        $send.PowerShell.Streams.Warning.Count | Should -Be 1 -Because 'one warning per send, not one per slice'
        $client.MessagesDropped | Should -Be 0
    }
}

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

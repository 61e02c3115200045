# SPEC "Guarantees", issue 19's cases 2, 4, 7 and 14 through the cmdlets; each test is named
# after its case. The core's side of these cases is in OrderingGuaranteeTests.cs.
BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:Ascii = [System.Text.Encoding]::ASCII
}

Describe 'Issue 19 case 2: -IdleTimeout counts only time ready to read' {
    BeforeEach { $sockets = [System.Collections.Generic.List[object]]::new() }
    AfterEach {
        Close-RawClient $sockets.ToArray()
        Clear-PSTcpState
    }

    It 'Case02: a connection paused by its own full Wait queue is not idle: all 200 lines arrive' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 5 -QueueFullMode Wait -IdleTimeout '300ms'
        $client = New-RawClient $server.Port; $sockets.Add($client)
        $lines = 1..200 | ForEach-Object { "line $_" }
        Send-RawBytes $client (($lines -join "`n") + "`n")
        Wait-Until { $server.QueueLength -eq 5 }
        # The consumer is slower than -IdleTimeout, several times over.
        Start-Sleep -Milliseconds 1500
        $r = Invoke-Captured { Receive-TcpMessage -Server $server -Count 200 -Timeout 20 -WarningVariable warnings -WarningAction SilentlyContinue; $warnings | ForEach-Object { "WARNING: $_" } }
        $r.Errors | Should -BeNullOrEmpty
        $r.Output | Where-Object { $_ -is [string] } | Should -BeNullOrEmpty
        ($r.Output | Where-Object { $_ -is [PSTcp.TcpMessage] }).Text | Should -Be $lines
        $server.MessagesDropped | Should -Be 0
        # Every echo came back too, after its line was queued.
        $echo = Read-RawBytes $client ([System.Text.Encoding]::ASCII.GetByteCount(($lines -join "`n") + "`n")) -Timeout 10
        [System.Text.Encoding]::ASCII.GetString($echo) | Should -Be (($lines -join "`n") + "`n")
        # Silent and ready to read, it is idle again: the server closes it.
        Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
    }

    It 'Case02: a connection whose -ScriptBlock handler is busy is not idle: the reply arrives' {
        $server = Start-TcpServer -Port 0 -IdleTimeout '300ms' -ScriptBlock { param($m) Start-Sleep -Milliseconds 1500; "done $($m.Text)" }
        $client = New-RawClient $server.Port; $sockets.Add($client)
        Send-RawBytes $client "work`n"
        $reply = Read-RawBytes $client 10 -Timeout 10
        [System.Text.Encoding]::ASCII.GetString($reply) | Should -Be "done work`n"
        $server.ErrorCount | Should -Be 0
    }

    It 'Case02: lines dropped in Wait mode are not blamed on a drop mode, and Wait is not advised' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 2 -QueueFullMode Wait
        $client = New-RawClient $server.Port; $sockets.Add($client)
        Send-RawBytes $client (((1..20 | ForEach-Object { "line $_" }) -join "`n") + "`n")
        Wait-Until { $server.QueueLength -eq 2 }
        # The stop's timeout resets the connection waiting for room: what it held is dropped.
        $null = Stop-TcpServer $server -Timeout '200ms' -WarningAction SilentlyContinue
        $r = Invoke-Captured { Receive-TcpMessage -Server $server -Timeout 5 -WarningVariable warnings -WarningAction SilentlyContinue; $warnings | ForEach-Object { "WARNING: $_" } }
        $warning = $r.Output | Where-Object { $_ -is [string] -and $_ -like 'WARNING:*dropped*' }
        $warning | Should -HaveCount 1
        $warning | Should -Match 'mode Wait'
        $warning | Should -Not -Match 'use -QueueFullMode Wait'
    }
}

Describe 'Issue 19 case 4: a relay forwards bytes exactly, whatever its observation does' {
    BeforeEach {
        $target = New-RawListener
        $sockets = [System.Collections.Generic.List[object]]::new()
    }
    AfterEach {
        Close-RawClient $sockets.ToArray()
        Clear-PSTcpState
        $target.Stop()
    }

    It 'Case04: a 100 KB line from the target reaches the client whole, and is observed truncated' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.LocalEndpoint.Port
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        $line = [byte[]]::new(100000)
        for ($i = 0; $i -lt $line.Length; $i++) { $line[$i] = [byte](97 + $i % 26) }
        $down = [byte[]]($line + [byte]10)
        $sending = [System.Net.Sockets.NetworkStream]::new($peer, $false).WriteAsync($down, 0, $down.Length)
        $atClient = Read-RawBytes $client $down.Length -Timeout 20
        $sending.Wait(10000) | Should -BeTrue
        $atClient.Length | Should -Be 100001
        ConvertTo-Hex $atClient | Should -Be (ConvertTo-Hex $down)

        $message = Receive-TcpMessage -Server $relay -Count 1 -Timeout 10
        $message.Truncated | Should -BeTrue
        $message.Direction | Should -Be 'TargetToClient'
        $message.Data.Length | Should -Be 65536
        ConvertTo-Hex $message.Data | Should -Be (ConvertTo-Hex $line[0..65535])
        $message | Format-List | Out-String | Should -Match 'Truncated\s*:\s*True'

        # Nothing was closed or reported: ErrorCount 0 is honest, and the pair still relays.
        $relay.ErrorCount | Should -Be 0
        Send-RawBytes $client "ping`n"
        [System.Text.Encoding]::ASCII.GetString((Read-RawBytes $peer 5 -Timeout 10)) | Should -Be "ping`n"
        $ping = Receive-TcpMessage -Server $relay -Count 1 -Timeout 10
        $ping.Text | Should -Be 'ping'
        $ping.Truncated | Should -BeFalse
    }

    It 'Case04: curl through a Line relay gets a 100 KB one-line body whole' -Skip:(-not (Get-Command curl -ErrorAction SilentlyContinue)) {
        $body = 'x' * 100000
        $head = "HTTP/1.1 200 OK`r`nContent-Length: $($body.Length + 1)`r`nConnection: close`r`n`r`n"
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.LocalEndpoint.Port
        $curl = Start-ThreadJob -ArgumentList $relay.Port { param($port) curl -s -o - "http://127.0.0.1:$port/"; $LASTEXITCODE }
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        $request = [System.Text.StringBuilder]::new()
        Wait-Until { $null = $request.Append($script:Ascii.GetString((Read-RawAvailable $peer -Window '100ms'))); $request.ToString() -match "`r`n`r`n" }
        Send-RawBytes $peer ($head + $body + "`n")
        Close-RawSend $peer
        $out = $curl | Wait-Job -Timeout 20 | Receive-Job
        $out | Should -HaveCount 2
        $out[0] | Should -Be $body
        $out[1] | Should -Be 0
        $observed = Receive-TcpMessage -Server $relay -Timeout 2 | Where-Object { $_.Direction -eq 'TargetToClient' -and $_.Truncated }
        $observed | Should -HaveCount 1
        $observed.Data.Length | Should -Be 65536
        $relay.ErrorCount | Should -Be 0
    }
}

# Start-TcpRelay against raw peers: a raw client socket on one side, a raw listener as the target.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function New-RandomBytes([int] $Count, [int] $Seed) {
        $bytes = [byte[]]::new($Count)
        [System.Random]::new($Seed).NextBytes($bytes)
        , $bytes
    }

    function Get-Sha256([byte[]] $Bytes) {
        [System.BitConverter]::ToString([System.Security.Cryptography.SHA256]::HashData($Bytes))
    }
}

Describe 'Start-TcpRelay' {
    BeforeEach {
        $target = New-RawListener
        $targetPort = $target.LocalEndpoint.Port
        $sockets = [System.Collections.Generic.List[object]]::new()
    }
    AfterEach {
        Close-RawClient $sockets.ToArray()
        Clear-PSTcpState
        $target.Stop()
    }

    It 'returns a TcpServer that Get-TcpServer lists' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -Name Relay1
        $relay | Should -BeOfType ([PSTcp.TcpServer])
        $relay.State | Should -Be 'Running'
        (Get-TcpServer -Name Relay1).Id | Should -Be $relay.Id
    }

    It 'forwards 1 MB of random binary byte for byte, both ways' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        $up = New-RandomBytes (1024 * 1024) 1
        $down = New-RandomBytes (1024 * 1024) 2
        # Both directions at once: neither side may wait for the other to read everything.
        $upSend = [System.Net.Sockets.NetworkStream]::new($client, $false).WriteAsync($up, 0, $up.Length)
        $downSend = [System.Net.Sockets.NetworkStream]::new($peer, $false).WriteAsync($down, 0, $down.Length)
        $atTarget = Read-RawBytes $peer $up.Length -Timeout 30
        $atClient = Read-RawBytes $client $down.Length -Timeout 30
        $upSend.Wait(10000) | Should -BeTrue
        $downSend.Wait(10000) | Should -BeTrue
        Get-Sha256 $atTarget | Should -Be (Get-Sha256 $up)
        Get-Sha256 $atClient | Should -Be (Get-Sha256 $down)
        $relay.ErrorCount | Should -Be 0
    }

    It 'passes a half-close on both ways, and the answer after it' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -NoQueue
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        Send-RawBytes $client "request`n"
        Close-RawSend $client
        # The target reads the request, then the end of the stream: the client's FIN came through.
        ConvertFrom-Bytes (Read-RawToEnd $peer -Timeout 10) | Should -BeExactly "request`n"
        # The target still answers after the client's half-close, then closes its side.
        Send-RawBytes $peer "answer`n"
        Close-RawSend $peer
        ConvertFrom-Bytes (Read-RawToEnd $client -Timeout 10) | Should -BeExactly "answer`n"
        Wait-Until { $relay.ConnectionCount -eq 0 } -Timeout 10
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
        $relay.ErrorCount | Should -Be 0
    }

    It 'queues both directions with their Direction, in conversation order' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        $turns = @(
            @{ From = $client; To = $peer; Text = 'hello' }
            @{ From = $peer; To = $client; Text = 'hi there' }
            @{ From = $client; To = $peer; Text = 'bye' }
            @{ From = $peer; To = $client; Text = 'see you' }
        )
        $n = 0
        foreach ($turn in $turns) {
            Send-RawBytes $turn.From "$($turn.Text)`n"
            ConvertFrom-Bytes (Read-RawBytes $turn.To ($turn.Text.Length + 1)) | Should -BeExactly "$($turn.Text)`n"
            $n++
            Wait-Until { $relay.QueueLength -eq $n } -Timeout 10
        }
        $messages = Receive-TcpMessage -Server $relay -Count 4 -Timeout '00:00:05'
        ($messages | ForEach-Object { "$($_.Direction):$($_.Text)" }) | Should -Be @(
            'ClientToTarget:hello', 'TargetToClient:hi there', 'ClientToTarget:bye', 'TargetToClient:see you')
        $messages[0].RemoteEndPoint.Port | Should -Be $client.LocalEndPoint.Port
        $messages[1].RemoteEndPoint.Port | Should -Be $targetPort
        $messages | ForEach-Object { $_.Source | Should -Be $relay.Name }
        # The message table shows which way each went.
        $table = $messages | Out-String -Width 200
        $table | Should -Match 'Dir'
        $table | Should -Match '->\s.*hello'
        $table | Should -Match '<-\s.*hi there'
    }

    It 'closes only the client whose target refuses, and records it' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -NoQueue
        $first = New-RawClient $relay.Port; $sockets.Add($first)
        $firstPeer = Receive-RawConnection $target; $sockets.Add($firstPeer)
        $target.Stop()   # from now on the target refuses
        $second = New-RawClient $relay.Port; $sockets.Add($second)
        Test-RawClosed $second -Timeout 5 | Should -BeTrue
        Wait-Until { $relay.ErrorCount -eq 1 } -Timeout 5
        $relay.LastError.Message | Should -Match "127\.0\.0\.1:$targetPort"
        $relay.State | Should -Be 'Running'
        # The first pair still works both ways.
        Send-RawBytes $first "still here`n"
        ConvertFrom-Bytes (Read-RawBytes $firstPeer 11) | Should -BeExactly "still here`n"
        Send-RawBytes $firstPeer "yes`n"
        ConvertFrom-Bytes (Read-RawBytes $first 4) | Should -BeExactly "yes`n"
    }

    It 'closes both sides when stopped' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        Send-RawBytes $client "ping`n"
        $null = Read-RawBytes $peer 5
        $relay | Stop-TcpServer
        Test-RawClosed $client -Timeout 10 | Should -BeTrue
        Test-RawClosed $peer -Timeout 10 | Should -BeTrue
        $relay.State | Should -Be 'Stopped'
    }

    It 'stops promptly while a half-closed client waits for a target that never answers' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -NoQueue
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        Close-RawSend $client
        (Read-RawToEnd $peer -Timeout 10).Length | Should -Be 0
        # The target neither answers nor closes: the pair waits, but a stop ends it, within its
        # timeout (the graceful close waits that long for the target's FIN, then resets it).
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $relay | Stop-TcpServer -Timeout 1 -WarningAction SilentlyContinue
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 2
        $relay.State | Should -Be 'Stopped'
        Test-RawClosed $client -Timeout 5 | Should -BeTrue
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
    }

    It 'closes the target connection when the client resets' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -NoQueue
        $client = New-RawClient $relay.Port
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        Reset-RawClient $client
        Test-RawClosed $peer -Timeout 10 | Should -BeTrue
        Wait-Until { $relay.ConnectionCount -eq 0 } -Timeout 10
    }

    It 'slows a client down when the target does not read (backpressure), memory bounded' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -NoQueue
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        $flood = [byte[]]::new(64MB)
        $send = [System.Net.Sockets.NetworkStream]::new($client, $false).WriteAsync($flood, 0, $flood.Length)
        # The target reads nothing: the relay stops reading from the client once the target's
        # socket buffers are full, so the client's send cannot finish.
        Wait-Until { @(Get-TcpConnection -Server $relay).Count -eq 1 } -Timeout 10
        $conn = Get-TcpConnection -Server $relay
        # Stalled: no progress over half a second, well before 64 MB went through.
        $progress = @{ Last = -1 }
        Wait-Until -IntervalMilliseconds 500 {
            $now = $conn.BytesReceived
            $stalled = $now -gt 0 -and $now -eq $progress.Last
            $progress.Last = $now
            $stalled
        } -Timeout 30
        $send.IsCompleted | Should -BeFalse
        $conn.BytesReceived | Should -BeLessThan 40MB
        # Once the target reads, everything arrives.
        $got = Read-RawBytes $peer $flood.Length -Timeout 60
        $got.Length | Should -Be $flood.Length
        $send.Wait(10000) | Should -BeTrue
    }

    It 'enforces -MaxConnections and -AllowedRemoteAddress on clients' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -MaxConnections 1 -NoQueue
        $first = New-RawClient $relay.Port; $sockets.Add($first)
        $null = Receive-RawConnection $target
        $second = New-RawClient $relay.Port; $sockets.Add($second)
        Test-RawClosed $second -Timeout 5 | Should -BeTrue
        $relay.ConnectionsRefused | Should -Be 1

        $guarded = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -AllowedRemoteAddress 127.0.0.2 -NoQueue
        $denied = New-RawClient $guarded.Port; $sockets.Add($denied)
        Test-RawClosed $denied -Timeout 5 | Should -BeTrue
        $guarded.TotalConnections | Should -Be 0
    }

    It 'sends a PROXY header naming the client to the target with -SendProxyProtocol' {
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $targetPort -SendProxyProtocol V1 -NoQueue
        $client = New-RawClient $relay.Port; $sockets.Add($client)
        $peer = Receive-RawConnection $target; $sockets.Add($peer)
        Send-RawBytes $client "data`n"
        $expected = "PROXY TCP4 127.0.0.1 127.0.0.1 $($client.LocalEndPoint.Port) $($relay.Port)`r`ndata`n"
        ConvertFrom-Bytes (Read-RawBytes $peer $expected.Length) | Should -BeExactly $expected
    }
}

Describe 'Start-TcpRelay with TLS' {
    BeforeAll { $cert = New-TestCertificate -Subject localhost }
    AfterEach { Clear-PSTcpState }

    It 'terminates TLS from clients and speaks TLS to the target with -UseTls' {
        $echo = Start-TcpEchoServer -Port 0 -Certificate $cert
        $relay = Start-TcpRelay -Port 0 -Certificate $cert -TargetHost 127.0.0.1 -TargetPort $echo.Port -UseTls -SkipCertificateCheck
        $client = Connect-TcpEndpoint 127.0.0.1 $relay.Port -SkipCertificateCheck
        'secret line' | Send-TcpLine -Connection $client
        (Receive-TcpMessage -Connection $client -Count 1 -Timeout '00:00:10').Text | Should -BeExactly 'secret line'
        # The relay's queue holds the plain text, both ways.
        $seen = Receive-TcpMessage -Server $relay -Count 2 -Timeout '00:00:10'
        ($seen | ForEach-Object { "$($_.Direction):$($_.Text)" }) | Should -Be @('ClientToTarget:secret line', 'TargetToClient:secret line')
        $echo.MessagesReceived | Should -Be 1
    }
}

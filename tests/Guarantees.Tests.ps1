# SPEC "Guarantees", issue 19's cases where the cmdlet is the point (3, 5, 11, 12, 13, 15); each
# test is named after its case. The core's side of these cases is in GuaranteeTests.cs.
BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # The peer sends $Count segments of $Size bytes, a few milliseconds apart (each arrives as
    # its own read), from a thread job; returns the job and the bytes it sends.
    function Start-Dribble([System.Net.Sockets.Socket] $Peer, [int] $Count, [int] $Size) {
        $bytes = [byte[]]::new($Count * $Size)
        for ($i = 0; $i -lt $bytes.Length; $i++) { $bytes[$i] = [byte](($i * 7 + [math]::Floor($i / $Size)) % 251) }
        $job = Start-ThreadJob -ArgumentList $Peer, $bytes, $Count, $Size {
            param($peer, $bytes, $count, $size)
            for ($i = 0; $i -lt $count; $i++) {
                $null = $peer.Send($bytes, $i * $size, $size, [System.Net.Sockets.SocketFlags]::None)
                Start-Sleep -Milliseconds 3
            }
        }
        return $job, $bytes
    }
}

Describe 'Issue 19 case 3: a stream read never skips bytes' {
    BeforeEach { $listener = New-RawListener }
    AfterEach {
        if ($dribble) { $dribble | Wait-Job -Timeout 10 | Remove-Job -Force }
        if ($peer) { Close-RawClient $peer }
        $listener.Stop()
        Clear-PSTcpState
    }

    It 'Case03: a Raw client connection queues losslessly by default (Wait), so -ByteCount gets every byte' {
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -Framing Raw -QueueCapacity 2
        $peer = Receive-RawConnection $listener
        $client | Format-List | Out-String | Should -Match 'Queue\s*:.*Wait'
        $dribble, $sent = Start-Dribble $peer 60 100
        $dribble | Wait-Job -Timeout 20 | Should -Not -BeNullOrEmpty
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 6000 -Timeout 10 }
        $r.Errors | Should -BeNullOrEmpty
        $r.Output | Should -HaveCount 1
        ConvertTo-Hex $r.Output[0].Data | Should -Be (ConvertTo-Hex $sent)
        $client.MessagesDropped | Should -Be 0
    }

    It 'Case03: a stream read over a queue that dropped reads fails with BytesDropped instead of returning a gap' {
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -Framing Raw -QueueCapacity 2 -QueueFullMode DropOldest
        $peer = Receive-RawConnection $listener
        $dribble, $sent = Start-Dribble $peer 60 100
        $dribble | Wait-Job -Timeout 20 | Should -Not -BeNullOrEmpty
        Wait-Until { $client.BytesReceived -ge 6000 }
        $client.MessagesDropped | Should -BeGreaterThan 0
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 6000 -Timeout 1 -WarningAction SilentlyContinue }
        $r.Errors.FullyQualifiedErrorId | Should -BeLike 'BytesDropped,*'
        $r.Output | Where-Object { $_.Length -eq 6000 } | Should -BeNullOrEmpty
    }
}

Describe 'Issue 19 case 5: -ByteCount at the end of the stream, and its bounds' {
    BeforeEach {
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -Framing Raw -MaxMessageLength 1000
            $peer = Receive-RawConnection $listener
        } finally { $listener.Stop() }
    }
    AfterEach {
        Close-RawClient $peer
        Clear-PSTcpState
    }

    It 'Case05: -ByteCount 1000 that meets the end of the stream writes the 9 bytes, then ConnectionClosed ($? false)' {
        Send-RawBytes $peer 'nine byte'
        Close-RawSend $peer
        $messages = Receive-TcpMessage $client -ByteCount 1000 -Timeout 5 -ErrorVariable failed -ErrorAction SilentlyContinue
        $succeeded = $?
        $succeeded | Should -BeFalse
        @($messages).Text | Should -Be 'nine byte'
        @($failed) | Should -HaveCount 1
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionClosed,*'
        $failed[0].Exception.Message | Should -Match '9 of 1000 byte'
    }

    It 'Case05: -ByteCount is bounded by its own value, not by -MaxMessageLength' {
        Send-RawBytes $peer ('y' * 3000)
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 3000 -Timeout 5 }
        $r.Errors | Should -BeNullOrEmpty
        $r.Output[0].Length | Should -Be 3000
    }

    It 'Case05: -Until fails with LineTooLong once more than -MaxMessageLength bytes came without a match' {
        Send-RawBytes $peer ('z' * 1001)
        Wait-Until { $client.BytesReceived -ge 1001 }
        $r = Invoke-Captured { Receive-TcpMessage $client -Until 'END' -Timeout 5 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong,*'
    }

    It 'Case05: -ByteCount 0 returns an empty message at once' {
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 0 -Timeout 5 }
        $r.Errors | Should -BeNullOrEmpty
        $r.Output | Should -HaveCount 1
        $r.Output[0].Length | Should -Be 0
        $r.Elapsed | Should -BeLessThan ([timespan]::FromSeconds(2))
    }

    It 'Case13: -ByteCount above 2 GiB - 57 is refused with InvalidArgument (no growth overflow)' {
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 3GB -Timeout 1 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $r = Invoke-Captured { Invoke-TcpRequest -Connection $client -Message 'x' -ByteCount ([long]::MaxValue) -Timeout 1 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }

    It 'Case13: a backtracking -Until ends with ReceiveTimeout within -Timeout plus a small constant' {
        Send-RawBytes $peer (('a' * 40) + '!')
        Wait-Until { $client.BytesReceived -ge 41 }
        $r = Invoke-Captured { Receive-TcpMessage $client -Until '^(a+)+$' -Timeout 2 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout,*'
        $r.Elapsed | Should -BeLessThan ([timespan]::FromSeconds(4))
        # The bytes stay for the next receive.
        (Receive-TcpMessage $client -ByteCount 41 -Timeout 5).Length | Should -Be 41
    }
}

Describe 'Issue 19 case 11: a consumer job keeps at most 1,000 errors' {
    AfterEach {
        Get-Job | Where-Object PSJobTypeName -eq 'TcpConsumerJob' | Remove-Job -Force
        Clear-PSTcpState
    }

    It 'Case11: a handler that always throws, nobody receiving: 1,000 errors kept, the rest counted, one warning' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { throw 'boom' }
        $job = Receive-TcpMessage -Server $server -AsJob
        $lines = 1..1500 | ForEach-Object { "line $_" }
        Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line $lines
        Wait-Until { $server.ErrorCount -ge 1500 } -Timeout 60
        Wait-Until { $job.Error.Count + $job.SuppressedErrorCount -ge 1500 } -Timeout 20
        $job.Error.Count | Should -Be 1000
        $job.SuppressedErrorCount | Should -BeGreaterOrEqual 500
        @($job.Warning | Where-Object { $_.Message -match 'counted, not kept' }) | Should -HaveCount 1
        $job.State | Should -Be 'Running'
    }
}

Describe 'Issue 19 case 12: queues are bounded in bytes too' {
    AfterEach { Clear-PSTcpState }

    It 'Case12: -QueueByteLimit bounds a server''s queue in bytes, QueueBytes and the view show how full' {
        $server = Start-TcpEchoServer -Port 0 -QueueByteLimit 1000 -NoQueue:$false
        $line = 'x' * 99
        Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line (1..30 | ForEach-Object { $line })
        Wait-Until { $server.MessagesReceived -ge 30 }
        $server.QueueBytes | Should -Be 990
        $server.QueueLength | Should -Be 10
        $server.MessagesDropped | Should -Be 20
        $server | Format-List | Out-String | Should -Match 'Queue\s*:\s*10 of 10,000, 990 B of 1000 B, DropOldest'
        $messages = Receive-TcpMessage -Server $server -Timeout 1 -WarningAction SilentlyContinue
        @($messages) | Should -HaveCount 10
        $server.QueueBytes | Should -Be 0
    }

    It 'Case12: Connect-TcpEndpoint takes -QueueByteLimit; the connection shows QueueBytes' {
        $server = Start-TcpEchoServer -Port 0 -NoQueue
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -QueueByteLimit 64 -QueueFullMode DropNewest
        Send-TcpLine -Connection $client -Line ('a' * 40), ('b' * 40), ('c' * 20)
        Wait-Until { $client.MessagesReceived -ge 3 }
        $client.QueueBytes | Should -Be 60
        $client.MessagesDropped | Should -Be 1
        (Receive-TcpMessage $client -Timeout 1 -WarningAction SilentlyContinue).Text | Should -Be ('a' * 40), ('c' * 20)
    }

    It 'Case12: a -QueueByteLimit below 1 is refused' {
        { Start-TcpEchoServer -Port 0 -QueueByteLimit 0 -ErrorAction Stop } | Should -Throw
    }
}

Describe 'Issue 19 case 15: canonical addresses only' {
    AfterEach { Clear-PSTcpState }

    It 'Case15: refuses <Text> in -AllowedRemoteAddress and -TrustedProxy with InvalidArgument' -TestCases @(
        @{ Text = '010.0.0.0/8' }
        @{ Text = '192.168.001.010' }
    ) {
        param($Text)
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -AllowedRemoteAddress $Text }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $r = Invoke-Captured { Start-TcpEchoServer -Port 0 -ProxyProtocol -TrustedProxy $Text }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        Get-TcpServer | Should -BeNullOrEmpty
    }

    It 'Case15: on a dual-stack listener ::/0 and ::ffff:127.0.0.0/104 admit IPv4 clients' -Skip:(-not [System.Net.Sockets.Socket]::OSSupportsIPv6) {
        foreach ($range in '::/0', '::ffff:127.0.0.0/104') {
            $server = Start-TcpEchoServer -Port 0 -Address '::' -AllowedRemoteAddress $range
            $reply = Invoke-TcpRequest -HostName 127.0.0.1 -Port $server.Port -Message 'v4' -Timeout 5
            $reply.Text | Should -Be 'v4'
            $server.ConnectionsRejected | Should -Be 0
            $server | Stop-TcpServer
        }
    }
}

# SPEC "Sending and receiving any message": Invoke-TcpRequest and the receives that scripted
# conversations need (-Until, one overall -Timeout, stream reads on Raw connections).

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # A raw peer that writes "tick N`n" every 300 ms (at most 20 times) on an accepted socket.
    function Start-Ticker([System.Net.Sockets.Socket] $Socket) {
        Start-BackgroundScript {
            param($socket)
            for ($i = 1; $i -le 20; $i++) {
                $bytes = [Text.Encoding]::ASCII.GetBytes("tick $i`n")
                try { $null = $socket.Send($bytes) } catch { return }
                Start-Sleep -Milliseconds 300
            }
        } -ArgumentList $Socket
    }
}

Describe 'Invoke-TcpRequest' {
    BeforeAll {
        $service = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message)
            switch -Wildcard ($Message.Text) {
                'LIST' { 'item a.c'; 'item abc'; 'END' }
                default { "you said: $($Message.Text)" }
            }
        }
    }
    AfterAll { Clear-PSTcpState }

    It 'connects, sends, writes one reply message by default, and closes' {
        $reply = @(Invoke-TcpRequest 127.0.0.1 $service.Port 'hello')
        $reply | Should -HaveCount 1
        $reply[0].Text | Should -Be 'you said: hello'
        $reply[0].PSObject.TypeNames | Should -Contain 'PSTcp.TcpMessage'
        Wait-Until { (Get-TcpServer -Id $service.Id).ConnectionCount -eq 0 } -Because 'the one-shot connection was closed'
    }

    It 'takes -Count messages' {
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Count 2).Text | Should -Be 'item a.c', 'item abc'
    }

    It 'takes messages up to and including the first matching -Until' {
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Until '^end$').Text | Should -Be 'item a.c', 'item abc', 'END'
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Until '^end$' -CaseSensitive -Timeout 1 -ErrorAction SilentlyContinue).Text |
            Should -Be 'item a.c', 'item abc', 'END'
    }

    It 'takes -Until literally with -SimpleMatch' {
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Until 'x|abc').Text | Should -Be 'item a.c', 'item abc' -Because 'as a regex it matches abc' 
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Until 'a.c' -SimpleMatch).Text | Should -Be 'item a.c'
        (Invoke-TcpRequest 127.0.0.1 $service.Port 'LIST' -Until 'x|abc' -SimpleMatch -Timeout 1 -ErrorAction SilentlyContinue).Text |
            Should -Be 'item a.c', 'item abc', 'END'
    }

    It 'keeps a -Connection open across requests' {
        $client = Connect-TcpEndpoint 127.0.0.1 $service.Port
        (Invoke-TcpRequest -Connection $client -Message 'one').Text | Should -Be 'you said: one'
        (Invoke-TcpRequest -Connection $client 'two').Text | Should -Be 'you said: two'
        $client.State | Should -Be 'Open'
    }

    It 'sends bytes and several messages, framed by the connection' {
        $server = Start-TcpEchoServer -Port 0 -Name "req-echo-$(New-Guid)"
        $reply = @(Invoke-TcpRequest 127.0.0.1 $server.Port -Message 'a', ([byte[]](0x00, 0xFF)) -Count 2)
        ConvertTo-Hex $reply[1].Data | Should -Be '00-FF'
        $reply[0].Text | Should -Be 'a'
    }

    It 'refuses <Case> with InvalidArgument before connecting' -TestCases @(
        @{ Case = '-ByteCount without Raw framing'; Parameters = @{ ByteCount = 3 } }
        @{ Case = '-Until with -ByteCount'; Parameters = @{ Framing = 'Raw'; ByteCount = 3; Until = 'x' } }
        @{ Case = '-Count with a Raw stream read'; Parameters = @{ Framing = 'Raw'; ByteCount = 3; Count = 2 } }
        @{ Case = 'an invalid regex'; Parameters = @{ Until = '(' } }
        @{ Case = '-SimpleMatch without -Until'; Parameters = @{ SimpleMatch = $true } }
        @{ Case = 'a bad framing'; Parameters = @{ Framing = 'LengthPrefix'; PrefixSize = 5 } }
    ) {
        param($Case, $Parameters)
        $listener = New-RawListener
        try {
            $r = Invoke-Captured { Invoke-TcpRequest 127.0.0.1 $listener.LocalEndpoint.Port -Message 'x' @Parameters }
            $r.Errors | Should -HaveCount 1
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            $listener.Pending() | Should -BeFalse -Because 'nothing connected'
        } finally { $listener.Stop() }
    }

    It 'refuses framing parameters with -Connection' {
        $client = Connect-TcpEndpoint 127.0.0.1 $service.Port
        $r = Invoke-Captured { Invoke-TcpRequest -Connection $client -Message 'x' -Framing Raw }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }

    It 'lists its one-shot connection while it waits for the reply, and not after' {
        $listener = New-RawListener
        $port = $listener.LocalEndpoint.Port
        try {
            $request = Start-BackgroundScript {
                param($module, $port)
                Import-Module $module
                Invoke-TcpRequest 127.0.0.1 $port 'question' -Timeout 10
            } -ArgumentList "$PSScriptRoot/../out/PSTcp/PSTcp.psd1", $port
            $peer = Receive-RawConnection $listener
            Wait-Until { @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $port }).Count -eq 1 } -Because 'Remove-Module can close what is registered'
            Send-RawBytes $peer "answer`n"
            (Wait-BackgroundScript $request).Text | Should -Be 'answer'
            @(Get-TcpConnection | Where-Object { $_.RemoteEndPoint.Port -eq $port }) | Should -HaveCount 0
        } finally {
            $listener.Stop()
            Close-RawClient $peer
        }
    }

    It 'fails like Connect-TcpEndpoint when refused' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured { Invoke-TcpRequest 127.0.0.1 $port 'x' -Timeout 3 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectionRefused,*'
    }
}

Describe 'One deadline for a whole receive' {
    AfterEach {
        Stop-BackgroundScript $ticker
        Close-RawClient $peer
        Clear-PSTcpState
    }

    It 'Invoke-TcpRequest -Until with -Timeout 1 returns in about a second with what arrived, then ReceiveTimeout' {
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port
            $peer = Receive-RawConnection $listener
        } finally { $listener.Stop() }
        $ticker = Start-Ticker $peer
        $r = Invoke-Captured { Invoke-TcpRequest -Connection $client -Until 'never' -Timeout 1 }
        $r.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.95
        $r.Elapsed.TotalSeconds | Should -BeLessThan 2.5 -Because 'the timeout is for the whole call, not per message'
        $r.Output.Count | Should -BeGreaterOrEqual 2
        $r.Output.Text | Should -Be @(1..$r.Output.Count | ForEach-Object { "tick $_" })
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout,*'
    }
}

Describe 'Receive-TcpMessage -Until' {
    AfterEach {
        Stop-BackgroundScript $ticker
        Close-RawClient $peer
        Clear-PSTcpState
    }

    It 'with -Timeout 1 against a peer sending a non-matching line every 300 ms returns in about a second with what arrived, then ReceiveTimeout' {
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port
            $peer = Receive-RawConnection $listener
        } finally { $listener.Stop() }
        $ticker = Start-Ticker $peer
        $r = Invoke-Captured { Receive-TcpMessage $client -Until 'never' -Timeout 1 }
        $r.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.95
        $r.Elapsed.TotalSeconds | Should -BeLessThan 2.5 -Because 'one deadline for the whole call, not one per message'
        $r.Output.Count | Should -BeGreaterOrEqual 2
        $r.Output.Text | Should -Be @(1..$r.Output.Count | ForEach-Object { "tick $_" })
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout,*'
    }

    It 'takes messages up to and including the match, leaving the rest queued' {
        $server = Start-TcpEchoServer -Port 0
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Send-TcpLine $client 'a', 'b.', 'bx', 'c'
        (Receive-TcpMessage $client -Until 'B.' -SimpleMatch -Timeout 5).Text | Should -Be 'a', 'b.'
        (Receive-TcpMessage $client -Until 'B.' -CaseSensitive -Count 2 -Timeout 5).Text | Should -Be 'bx', 'c'
    }

    It 'ends a consumer job at the match' {
        $server = Start-TcpEchoServer -Port 0
        $job = Receive-TcpMessage -Server $server -Until '^stop$' -AsJob
        Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line 'one', 'stop', 'after'
        $job | Wait-Job -Timeout 10 | Should -Not -BeNullOrEmpty
        $job.State | Should -Be 'Completed'
        ($job | Receive-Job).Text | Should -Be 'one', 'stop'
        (Receive-TcpMessage -Server $server -Count 1 -Timeout 5).Text | Should -Be 'after'
    }
}

Describe 'Stream reads on Raw connections' {
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

    It 'matches -Until across reads and returns one message ending with the match' {
        Send-RawBytes $peer "HTTP/1.1 200 OK`r`nA: 1`r"
        Wait-Until { $client.BytesReceived -ge 20 }
        Send-RawBytes $peer "`n`r`nbody"
        $head = @(Receive-TcpMessage $client -Until "`r`n`r`n" -Timeout 5)
        $head | Should -HaveCount 1
        $head[0].Text | Should -Be "HTTP/1.1 200 OK`r`nA: 1`r`n`r`n"
        (Receive-TcpMessage $client -ByteCount 4 -Timeout 5).Text | Should -Be 'body'
    }

    It 'returns exactly -ByteCount bytes and keeps the rest, in order, for the next receives' {
        Send-RawBytes $peer (Join-Bytes 'abc' ([byte[]](0x00, 0x0D, 0x0A, 0xFF)) 'defgh:tail')
        Wait-Until { $client.BytesReceived -ge 17 }
        ConvertTo-Hex (Receive-TcpMessage $client -ByteCount 5 -Timeout 5).Data | Should -Be '61-62-63-00-0D'
        ConvertTo-Hex (Receive-TcpMessage $client -ByteCount 2 -Timeout 5).Data | Should -Be '0A-FF'
        (Receive-TcpMessage $client -Until ':' -Timeout 5).Text | Should -Be 'defgh:'
        # A plain receive takes what is left first, then what comes next.
        Send-RawBytes $peer 'more'
        (Receive-TcpMessage $client -Count 1 -Timeout 5).Text | Should -Be 'tail'
        (Receive-TcpMessage $client -ByteCount 4 -Timeout 5).Text | Should -Be 'more'
    }

    It 'writes what arrived, then ReceiveTimeout, when -ByteCount is not reached in time' {
        Send-RawBytes $peer 'abc'
        $r = Invoke-Captured { Receive-TcpMessage $client -ByteCount 10 -Timeout 0.5 }
        $r.Output.Text | Should -Be 'abc'
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout,*'
        $r.Errors[0].Exception.Message | Should -Match '3 of 10 byte'
    }

    It 'writes what arrived when the peer closes before the match' {
        Send-RawBytes $peer 'partial'
        Close-RawSend $peer
        $r = Invoke-Captured { Receive-TcpMessage $client -Until 'END' -Timeout 5 }
        $r.Output.Text | Should -Be 'partial'
        $r.Errors | Where-Object { $_.FullyQualifiedErrorId -like 'ReceiveTimeout*' } | Should -BeNullOrEmpty
    }

    It 'stops -Until at -MaxMessageLength with LineTooLong and keeps the bytes' {
        Send-RawBytes $peer ('x' * 1200)
        Wait-Until { $client.BytesReceived -ge 1200 }
        $r = Invoke-Captured { Receive-TcpMessage $client -Until 'END' -Timeout 5 }
        $r.Output | Should -BeNullOrEmpty
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong,*'
        (Receive-TcpMessage $client -ByteCount 1200 -Timeout 5).Data.Length | Should -Be 1200
    }

    It 'refuses <Case> with InvalidArgument' -TestCases @(
        @{ Case = '-Count with a stream read'; Parameters = @{ ByteCount = 2; Count = 2 } }
        @{ Case = 'a stream read as a job'; Parameters = @{ Until = 'x'; AsJob = $true } }
        @{ Case = '-Until with -ByteCount'; Parameters = @{ Until = 'x'; ByteCount = 2 } }
    ) {
        param($Case, $Parameters)
        $r = Invoke-Captured { Receive-TcpMessage $client @Parameters -Timeout 1 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }

    It 'refuses -ByteCount on a line connection and on a server' {
        $server = Start-TcpEchoServer -Port 0 -Framing Raw
        (Invoke-Captured { Receive-TcpMessage -Server $server -ByteCount 2 -Timeout 1 }).Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $line = Connect-TcpEndpoint 127.0.0.1 $server.Port
        (Invoke-Captured { Receive-TcpMessage $line -ByteCount 2 -Timeout 1 }).Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }
}

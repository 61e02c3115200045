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

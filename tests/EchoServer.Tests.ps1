BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # $server is the calling test's server (dynamic scope).
    function Receive-ServerMessage([int] $Count) {
        @(Receive-TcpMessage -Server $server -Count $Count -Timeout ([TimeSpan]::FromSeconds(15)))
    }

    function Get-LiveServer {
        Get-TcpServer -Id $server.Id
    }
}

Describe 'Start-TcpEchoServer' {
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'returns a running PSTcp.TcpServer at once, with the real port for -Port 0, on 127.0.0.1 by default' {
        $server = Start-TcpEchoServer -Port 0
        $server | Should -HaveCount 1
        $server.PSObject.TypeNames | Should -Contain 'PSTcp.TcpServer'
        $server.State | Should -Be 'Running'
        $server.Port | Should -BeGreaterThan 0
        $server.Id | Should -BeOfType [int]
        $server.LocalEndPoint | Should -BeOfType [System.Net.IPEndPoint]
        $server.LocalEndPoint.Address.ToString() | Should -Be '127.0.0.1'
        $server.LocalEndPoint.Port | Should -Be $server.Port
        $server.StartTime | Should -Not -BeNullOrEmpty
        $server.ConnectionCount | Should -Be 0
        $server.TotalConnections | Should -Be 0
        $server.MessagesReceived | Should -Be 0
        # Really listening on that port.
        $client = New-RawClient $server.Port
        Send-RawBytes $client "up`n"
        ConvertFrom-Bytes (Read-RawBytes $client 3) | Should -BeExactly "up`n"
    }

    It 'gives each server a distinct Id and port' {
        $a = Start-TcpEchoServer -Port 0
        $b = Start-TcpEchoServer -Port 0
        $a.Id | Should -Not -Be $b.Id
        $a.Port | Should -Not -Be $b.Port
    }

    It 'decodes Text with -Encoding, keeping Data and the echo exact' {
        $server = Start-TcpEchoServer -Port 0 -Encoding ([System.Text.Encoding]::GetEncoding(28591))
        $client = New-RawClient $server.Port
        $wire = [byte[]](0x63, 0x61, 0x66, 0xE9, 0x0A)   # "café" in Latin-1: invalid as UTF-8
        Send-RawBytes $client $wire
        ConvertTo-Hex (Read-RawBytes $client 5) | Should -Be (ConvertTo-Hex $wire)
        $message = @(Receive-TcpMessage -Server $server -Count 1 -Timeout ([TimeSpan]::FromSeconds(10)))
        $message[0].Text | Should -BeExactly "caf$([char]0xE9)"
        ConvertTo-Hex $message[0].Data | Should -Be '63-61-66-E9'
    }

    It 'uses -Name' {
        $name = "named-$([guid]::NewGuid().ToString('N'))"
        $server = Start-TcpEchoServer -Port 0 -Name $name
        $server.Name | Should -BeExactly $name
    }
}

Describe 'Echo and framing' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "echo-$([guid]::NewGuid().ToString('N'))"
        $client = New-RawClient $server.Port
    }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'echoes plain lines byte for byte and queues them as messages' {
        Send-RawBytes $client "hello`nworld`n"
        ConvertFrom-Bytes (Read-RawBytes $client 12) | Should -BeExactly "hello`nworld`n"

        $messages = Receive-ServerMessage 2
        $messages | Should -HaveCount 2
        $messages[0].PSObject.TypeNames | Should -Contain 'PSTcp.TcpMessage'
        $messages.Text | Should -Be @('hello', 'world')
        ConvertTo-Hex $messages[0].Data | Should -Be (ConvertTo-Hex (ConvertTo-Bytes 'hello'))
        $messages.Sequence | Should -Be @(1, 2)
        $messages[0].Source | Should -BeExactly $server.Name
        $messages[0].RemoteEndPoint.Port | Should -Be $client.LocalEndPoint.Port
        $messages[0].LocalEndPoint.Port | Should -Be $server.Port
        $connection = @(Get-TcpConnection -Server $server)
        $connection | Should -HaveCount 1
        $messages[0].ConnectionId | Should -Be $connection[0].Id
    }

    It 'echoes CRLF lines with the CR and strips the CR from the message' {
        Send-RawBytes $client "one`r`ntwo`r`n"
        ConvertTo-Hex (Read-RawBytes $client 10) | Should -Be (ConvertTo-Hex (ConvertTo-Bytes "one`r`ntwo`r`n"))

        $messages = Receive-ServerMessage 2
        $messages.Text | Should -BeExactly @('one', 'two')
        ConvertTo-Hex $messages[1].Data | Should -Be (ConvertTo-Hex (ConvertTo-Bytes 'two'))
    }

    It 'echoes invalid UTF-8 exactly; Text has U+FFFD and Data the exact bytes' {
        $lines = @(
            [byte[]](0x41, 0xC0, 0x80, 0x42),
            [byte[]](0xFF),
            [byte[]](0x43, 0xED, 0xA0, 0x80, 0x44)
        )
        $wire = Join-Bytes $lines[0] "`n" $lines[1] "`n" $lines[2] "`n"
        Send-RawBytes $client $wire
        ConvertTo-Hex (Read-RawBytes $client $wire.Length) | Should -Be (ConvertTo-Hex $wire)

        $messages = Receive-ServerMessage 3
        $messages | Should -HaveCount 3
        for ($i = 0; $i -lt 3; $i++) {
            ConvertTo-Hex $messages[$i].Data | Should -Be (ConvertTo-Hex $lines[$i])
            $messages[$i].Text | Should -BeLike "*$([char]0xFFFD)*"
            $messages[$i].Text | Should -BeExactly ([System.Text.UTF8Encoding]::new($false).GetString($lines[$i]))
        }
        $messages[0].Text | Should -BeLike 'A*B'
    }

    It 'keeps NUL and control bytes inside a line' {
        $line = [byte[]](0x61, 0x00, 0x62, 0x01, 0x1B, 0x00)
        $wire = Join-Bytes $line "`n"
        Send-RawBytes $client $wire
        ConvertTo-Hex (Read-RawBytes $client $wire.Length) | Should -Be (ConvertTo-Hex $wire)

        $message = Receive-ServerMessage 1
        ConvertTo-Hex $message[0].Data | Should -Be (ConvertTo-Hex $line)
        $message[0].Text | Should -BeExactly "a$([char]0)b$([char]1)$([char]27)$([char]0)"
    }

    It 'decodes a multibyte character split across two writes like an unsplit one' {
        $bytes = ConvertTo-Bytes "x$([char]0xE9)y"   # 78 C3 A9 79
        Send-RawBytes $client ([byte[]]$bytes[0..1])
        Send-RawBytes $client (Join-Bytes ([byte[]]$bytes[2..3]) "`n")
        $null = Read-RawBytes $client 5
        $message = Receive-ServerMessage 1
        $message[0].Text | Should -BeExactly "x$([char]0xE9)y"
    }

    It 'frames a\r\nb\nc\r\r\n as a, b and c\r' {
        $wire = ConvertTo-Bytes "a`r`nb`nc`r`r`n"
        Send-RawBytes $client $wire
        ConvertTo-Hex (Read-RawBytes $client $wire.Length) | Should -Be (ConvertTo-Hex $wire)

        $messages = Receive-ServerMessage 3
        $messages | Should -HaveCount 3
        $messages[0].Text | Should -BeExactly 'a'
        $messages[1].Text | Should -BeExactly 'b'
        $messages[2].Text | Should -BeExactly "c`r"
        ConvertTo-Hex $messages[2].Data | Should -Be '63-0D'
    }

    It 'treats a bare CR as data, not as a terminator' {
        Send-RawBytes $client "p`rq`n"
        $null = Read-RawBytes $client 4
        $message = Receive-ServerMessage 1
        $message[0].Text | Should -BeExactly "p`rq"
    }

    It 'delivers an empty line as an empty message' {
        Send-RawBytes $client "`n`r`nz`n"
        ConvertFrom-Bytes (Read-RawBytes $client 5) | Should -BeExactly "`n`r`nz`n"

        $messages = Receive-ServerMessage 3
        $messages | Should -HaveCount 3
        $messages[0].Text | Should -BeExactly ''
        $messages[0].Data.Length | Should -Be 0
        $messages[1].Text | Should -BeExactly ''
        $messages[1].Data.Length | Should -Be 0
        $messages[2].Text | Should -BeExactly 'z'
    }

    It 'delivers and echoes a final fragment without LF when the peer half-closes' {
        Send-RawBytes $client "first`ntail"
        Close-RawSend $client
        # Echo of everything, then EOF from the server.
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "first`ntail"

        $messages = Receive-ServerMessage 2
        $messages.Text | Should -BeExactly @('first', 'tail')
        $messages.Sequence | Should -Be @(1, 2)
    }

    It 'answers ping then half-close with the echo, then EOF, and queues ping exactly once' {
        Send-RawBytes $client "ping`n"
        Close-RawSend $client
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "ping`n"

        $messages = Receive-ServerMessage 1
        $messages.Text | Should -BeExactly @('ping')
        $extra = Invoke-Captured { Receive-TcpMessage -Server $server -Count 1 -Timeout ([TimeSpan]::FromMilliseconds(300)) }
        $extra.Output | Should -HaveCount 0
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 } -Because 'the half-closed connection to end'
        (Get-LiveServer).MessagesReceived | Should -Be 1
    }

    It 'echoes 10k lines sent in one write, in order, and queues 10k messages in order' {
        $count = 10000
        $builder = [System.Text.StringBuilder]::new()
        for ($i = 1; $i -le $count; $i++) { $null = $builder.Append('line ').Append($i).Append("`n") }
        $wire = ConvertTo-Bytes $builder.ToString()
        Send-RawBytes $client $wire
        $echo = Read-RawBytes $client $wire.Length -Timeout 30
        [System.Linq.Enumerable]::SequenceEqual($echo, $wire) | Should -BeTrue

        $messages = Receive-ServerMessage $count
        $messages | Should -HaveCount $count
        $expected = [string[]](1..$count | ForEach-Object { "line $_" })
        [System.Linq.Enumerable]::SequenceEqual([string[]]$messages.Text, $expected) | Should -BeTrue
        [System.Linq.Enumerable]::SequenceEqual([long[]]$messages.Sequence, [long[]](1..$count)) | Should -BeTrue
        (Get-LiveServer).MessagesReceived | Should -Be $count
        (Get-LiveServer).MessagesDropped | Should -Be 0
    }

    It 'is unaffected by another client that resets mid-line' {
        $other = New-RawClient $server.Port
        try {
            Send-RawBytes $other "partial line without end"
            Wait-Until { (Get-LiveServer).BytesReceived -ge 24 } -Because 'the partial line to be read'
            Reset-RawClient $other
            Wait-Until { (Get-LiveServer).ConnectionCount -eq 1 } -Because 'the reset connection to be gone'
        } finally { Close-RawClient $other }
        Send-RawBytes $client "still here`n"
        ConvertFrom-Bytes (Read-RawBytes $client 11) | Should -BeExactly "still here`n"
        (Get-LiveServer).State | Should -Be 'Running'
        $messages = Receive-ServerMessage 1
        $messages.Text | Should -BeExactly @('still here')
    }
}

Describe 'Counters and connections' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "count-$([guid]::NewGuid().ToString('N'))"
        $client = New-RawClient $server.Port
    }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'counts messages, bytes and connections' {
        Send-RawBytes $client "one`ntwo`nthree`n"
        $null = Read-RawBytes $client 14
        Wait-Until { $l = Get-LiveServer; $l.MessagesReceived -eq 3 -and $l.QueueLength -eq 3 } -Because 'three messages counted and queued'
        $live = Get-LiveServer
        $live.BytesReceived | Should -Be 14
        $live.ConnectionCount | Should -Be 1
        $live.TotalConnections | Should -Be 1
        $live.QueueLength | Should -Be 3
        $live.MessagesDropped | Should -Be 0

        $second = New-RawClient $server.Port
        try {
            Send-RawBytes $second "x`n"
            $null = Read-RawBytes $second 2
            Wait-Until { (Get-LiveServer).ConnectionCount -eq 2 }
        } finally { Close-RawClient $second }
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 1 } -Because 'the closed connection to be counted out'
        $live = Get-LiveServer
        $live.TotalConnections | Should -Be 2
        $live.MessagesReceived | Should -Be 4
        $live.BytesReceived | Should -Be 16
        $live.QueueLength | Should -Be 4

        $null = Receive-ServerMessage 4
        (Get-LiveServer).QueueLength | Should -Be 0
    }

    It 'lists accepted connections with Get-TcpConnection -Server, with their own counters' {
        $second = New-RawClient $server.Port
        try {
            Send-RawBytes $client "abc`n"
            $null = Read-RawBytes $client 4
            Send-RawBytes $second "de`nfg`n"
            $null = Read-RawBytes $second 6
            Wait-Until { @(Get-TcpConnection -Server $server).Count -eq 2 }
            $connections = @(Get-TcpConnection -Server $server)
            foreach ($c in $connections) {
                $c.PSObject.TypeNames | Should -Contain 'PSTcp.TcpConnection'
                $c.State | Should -Be 'Open'
                $c.LocalEndPoint.Port | Should -Be $server.Port
                $c.ConnectedAt | Should -Not -BeNullOrEmpty
            }
            $ports = $connections | ForEach-Object { $_.RemoteEndPoint.Port } | Sort-Object
            $ports | Should -Be (@($client.LocalEndPoint.Port, $second.LocalEndPoint.Port) | Sort-Object)
            $first = $connections | Where-Object { $_.RemoteEndPoint.Port -eq $client.LocalEndPoint.Port }
            Wait-Until { $first.MessagesReceived -eq 1 -and $first.BytesSent -eq 4 }
            $first.BytesReceived | Should -Be 4
            $other = $connections | Where-Object { $_.RemoteEndPoint.Port -eq $second.LocalEndPoint.Port }
            Wait-Until { $other.MessagesReceived -eq 2 -and $other.BytesSent -eq 6 }
            $other.BytesReceived | Should -Be 6
            $first.Id | Should -Not -Be $other.Id
        } finally { Close-RawClient $second }
    }
}

Describe 'Get-TcpServer' {
    BeforeAll {
        $prefix = "gts-$([guid]::NewGuid().ToString('N'))"
        $a = Start-TcpEchoServer -Port 0 -Name "$prefix-a"
        $b = Start-TcpEchoServer -Port 0 -Name "$prefix-b"
        $other = Start-TcpEchoServer -Port 0 -Name "other-$prefix"
    }
    AfterAll { Clear-PSTcpState }

    It 'lists all servers of the process' {
        $ids = @(Get-TcpServer).Id
        $ids | Should -Contain $a.Id
        $ids | Should -Contain $b.Id
        $ids | Should -Contain $other.Id
    }

    It 'finds servers by name with wildcards' {
        $found = @(Get-TcpServer -Name "$prefix-*")
        $found | Should -HaveCount 2
        ($found.Id | Sort-Object) | Should -Be (@($a.Id, $b.Id) | Sort-Object)
    }

    It 'finds a server by exact name, positionally' {
        $found = @(Get-TcpServer "$prefix-b")
        $found | Should -HaveCount 1
        $found[0].Id | Should -Be $b.Id
        $found[0].Port | Should -Be $b.Port
    }

    It 'finds servers by -Id' {
        $found = @(Get-TcpServer -Id $a.Id)
        $found | Should -HaveCount 1
        $found[0].Name | Should -BeExactly "$prefix-a"
        @(Get-TcpServer -Id $a.Id, $other.Id) | Should -HaveCount 2
    }

    It 'returns nothing and no error for a wildcard that matches nothing' {
        $r = Invoke-Captured { Get-TcpServer -Name "nomatch-$prefix-*" }
        $r.Output | Should -HaveCount 0
        $r.Errors | Should -HaveCount 0
    }
}

Describe 'Default table views' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -Name "view-$([guid]::NewGuid().ToString('N'))"
        $client = New-RawClient $server.Port
        Send-RawBytes $client "view`n"
        $null = Read-RawBytes $client 5
        $message = @(Receive-TcpMessage -Server $server -Count 1 -Timeout ([TimeSpan]::FromSeconds(10)))[0]
        $connection = @(Get-TcpConnection -Server $server)[0]

        function Get-PlainText([object] $InputObject, [switch] $Table) {
            $text = if ($Table) { $InputObject | Format-Table | Out-String -Width 250 } else { $InputObject | Out-String -Width 250 }
            $text -replace "`e\[[0-9;]*m", ''
        }
    }
    AfterAll {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'has a table view for <_>' -ForEach 'PSTcp.TcpServer', 'PSTcp.TcpConnection', 'PSTcp.TcpMessage' {
        $format = Get-FormatData -TypeName $_
        $format | Should -Not -BeNullOrEmpty
        $tables = @($format.FormatViewDefinition.Control | Where-Object { $_ -is [System.Management.Automation.TableControl] })
        $tables.Count | Should -BeGreaterThan 0
    }

    It 'shows a server as a table with its endpoint (host:port) and State by default' {
        $text = Get-PlainText $server
        $header = ($text -split "`n" | Where-Object { $_.Trim() })[0]
        $header | Should -Match '\bLocalEndPoint\b'
        $text | Should -Match ([regex]::Escape("127.0.0.1:$($server.Port)"))
        $header | Should -Match '\bState\b'
        $text | Should -Match '(?m)^\s*-{2,}'
        $text | Should -Match "\b$($server.Port)\b"
        (Get-PlainText $server -Table) | Should -Match '\bLocalEndPoint\b'
    }

    It 'shows connections and messages as tables' {
        $text = Get-PlainText $connection
        $text | Should -Match '(?m)^\s*-{2,}'
        $text | Should -Match 'Open'
        $text = Get-PlainText $message
        $text | Should -Match '(?m)^\s*-{2,}'
        $text | Should -Match '\bview\b'
    }
}

Describe 'Stop-TcpServer' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "stop-$([guid]::NewGuid().ToString('N'))"
        $port = $server.Port
    }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'stops a server from the pipeline, frees the port and writes nothing' {
        $out = @($server | Stop-TcpServer)
        $out | Should -HaveCount 0
        $server.State | Should -Be 'Stopped'
        Test-PortBindable $port | Should -BeTrue
    }

    It 'stops a server by -Name' {
        Stop-TcpServer -Name $server.Name
        $server.State | Should -Be 'Stopped'
        Test-PortBindable $port | Should -BeTrue
    }

    It 'stops a server by -Id' {
        Stop-TcpServer -Id $server.Id
        $server.State | Should -Be 'Stopped'
        Test-PortBindable $port | Should -BeTrue
    }

    It 'returns the stopped server with -PassThru' {
        $out = @(Stop-TcpServer -Id $server.Id -PassThru)
        $out | Should -HaveCount 1
        $out[0].Id | Should -Be $server.Id
        $out[0].State | Should -Be 'Stopped'
    }

    It 'does nothing with -WhatIf' {
        # In a runspace of its own, whose host keeps the "What if:" line out of the test output.
        $ps = [PowerShell]::Create()
        $null = $ps.AddCommand('Import-Module').AddArgument("$PSScriptRoot/../out/PSTcp/PSTcp.psd1").AddStatement().
            AddCommand('Stop-TcpServer').AddParameter('Id', $server.Id).AddParameter('WhatIf')
        $null = $ps.Invoke()
        $ps.Streams.Error | Should -HaveCount 0
        $ps.Dispose()
        $server.State | Should -Be 'Running'
        $client = New-RawClient $port
        Send-RawBytes $client "alive`n"
        ConvertFrom-Bytes (Read-RawBytes $client 6) | Should -BeExactly "alive`n"
    }

    It 'closes connected clients, after echoing and queueing what was read' {
        $client = New-RawClient $port
        Send-RawBytes $client "before stop`n"
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 1 }
        $server | Stop-TcpServer
        # The echo of what was read, then FIN.
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "before stop`n"
        $messages = @(Receive-TcpMessage -Server $server -Timeout ([TimeSpan]::FromSeconds(10)))
        $messages.Text | Should -BeExactly @('before stop')
        $server.ConnectionCount | Should -Be 0
        Test-PortBindable $port | Should -BeTrue
    }

    It 'refuses new connections once stopped' {
        $server | Stop-TcpServer
        { New-RawClient $port -Timeout 5 } | Should -Throw
    }
}

# What a message is (-Framing) and the framing side of sending and receiving any
# message: peers here are raw System.Net.Sockets sockets, never PSTcp's own client.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # A PSTcp client connected to a raw listener, and the raw socket of the listener's side.
    function New-FramedPair([hashtable] $Framing = @{}) {
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port @Framing
            $peer = Receive-RawConnection $listener
        } finally { $listener.Stop() }
        [pscustomobject]@{ Client = $client; Peer = $peer }
    }
}

Describe 'Framing parameters' {
    AfterEach { Clear-PSTcpState }

    It 'refuses <Case> with InvalidArgument before binding or connecting' -TestCases @(
        @{ Case = 'a prefix size of 5'; Parameters = @{ Framing = 'LengthPrefix'; PrefixSize = 5 } }
        @{ Case = 'FixedLength without -MessageLength'; Parameters = @{ Framing = 'FixedLength' } }
        @{ Case = '-MessageLength over -MaxMessageLength'; Parameters = @{ Framing = 'FixedLength'; MessageLength = 100; MaxMessageLength = 10 } }
        @{ Case = 'Delimiter framing without -Delimiter'; Parameters = @{ Framing = 'Delimiter' } }
        @{ Case = 'an empty delimiter'; Parameters = @{ Delimiter = [byte[]]@() } }
        @{ Case = '-PrefixSize with Line framing'; Parameters = @{ PrefixSize = 2 } }
        @{ Case = '-ByteOrder with Raw framing'; Parameters = @{ Framing = 'Raw'; ByteOrder = 'LittleEndian' } }
        @{ Case = '-MessageLength without FixedLength'; Parameters = @{ MessageLength = 4 } }
        @{ Case = '-Delimiter with LengthPrefix framing'; Parameters = @{ Framing = 'LengthPrefix'; Delimiter = ';' } }
        @{ Case = 'a delimiter the encoding cannot write'; Parameters = @{ Delimiter = 'é'; Encoding = 'ascii' } }
    ) {
        param($Case, $Parameters)
        $port = Get-FreeTcpPort
        $server = Invoke-Captured { Start-TcpEchoServer -Port $port @Parameters }
        $server.Errors | Should -HaveCount 1
        $server.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $server.Errors[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        Test-PortBindable $port | Should -BeTrue -Because 'nothing was bound'

        # Connect-TcpEndpoint fails before connecting: a listener that never accepts sees nothing.
        $listener = New-RawListener
        try {
            $client = Invoke-Captured { Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port @Parameters }
            $client.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            $listener.Pending() | Should -BeFalse
        } finally { $listener.Stop() }
    }

    It 'takes -Delimiter alone as Delimiter framing, keeping strings and bytes apart' {
        $text = Connect-TcpEndpoint 127.0.0.1 (Start-TcpEchoServer -Port 0).Port -Delimiter "`r`n" -Encoding unicode
        $text.Framing.Kind | Should -Be 'Delimiter'
        ConvertTo-Hex $text.Framing.Terminator.ToArray() | Should -Be '0D-00-0A-00'
        $bytes = Connect-TcpEndpoint 127.0.0.1 (Start-TcpEchoServer -Port 0).Port -Delimiter 13, 10 -Encoding unicode
        ConvertTo-Hex $bytes.Framing.Terminator.ToArray() | Should -Be '0D-0A'
        $nul = Start-TcpEchoServer -Port 0 -Delimiter 0
        $nul.Framing.Kind | Should -Be 'Delimiter'
        ConvertTo-Hex $nul.Framing.Terminator.ToArray() | Should -Be '00'
    }

    It 'takes -MaxMessageLength as -MaxLineLength on servers and connections' {
        $server = Start-TcpServer -Port 0 -Broadcast -MaxMessageLength 1234 -Framing LengthPrefix -PrefixSize 2
        $server.Framing.MaxMessageLength | Should -Be 1234
        $server.Framing.PrefixSize | Should -Be 2
        (Connect-TcpEndpoint 127.0.0.1 $server.Port -MaxMessageLength 99).Framing.MaxMessageLength | Should -Be 99
    }
}

Describe 'Send-TcpMessage framing' {
    AfterEach {
        if ($pair) { Close-RawClient $pair.Peer }
        Clear-PSTcpState
    }

    It 'frames each message with <Case>' -TestCases @(
        @{ Case = 'Line (LF)'; Framing = @{}; Expected = '61-0D-0A-0A-00-FF-0A' }
        @{ Case = 'Line in UTF-16'; Framing = @{ Encoding = 'unicode' }; Expected = '61-00-0D-00-0A-00-0A-00-00-FF-0A-00' }
        @{ Case = 'a text delimiter'; Framing = @{ Delimiter = '<END>' }; Expected = '61-0D-0A-3C-45-4E-44-3E-00-FF-3C-45-4E-44-3E' }
        @{ Case = 'a byte delimiter'; Framing = @{ Delimiter = 0 }; Expected = '61-0D-0A-00-00-FF-00' }
        @{ Case = 'a 4-byte big-endian prefix'; Framing = @{ Framing = 'LengthPrefix' }; Expected = '00-00-00-03-61-0D-0A-00-00-00-02-00-FF' }
        @{ Case = 'a 2-byte little-endian prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 2; ByteOrder = 'LittleEndian' }; Expected = '03-00-61-0D-0A-02-00-00-FF' }
        @{ Case = 'a 1-byte prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 1 }; Expected = '03-61-0D-0A-02-00-FF' }
        @{ Case = 'an 8-byte prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 8 }; Expected = '00-00-00-00-00-00-00-03-61-0D-0A-00-00-00-00-00-00-00-02-00-FF' }
        @{ Case = 'Raw'; Framing = @{ Framing = 'Raw' }; Expected = '61-0D-0A-00-FF' }
    ) {
        param($Case, $Framing, $Expected)
        $pair = New-FramedPair $Framing
        # A string (encoded with the connection's encoding: CR LF inside it) and a byte[] with NUL and 0xFF.
        Send-TcpMessage -Connection $pair.Client -Message "a`r`n", ([byte[]](0x00, 0xFF))
        $n = ($Expected -split '-').Count
        ConvertTo-Hex (Read-RawBytes $pair.Peer $n) | Should -Be $Expected
        (Read-RawAvailable $pair.Peer -Window '200ms').Length | Should -Be 0 -Because 'nothing more is sent'
        $pair.Client.MessagesSent | Should -Be 2
    }

    It 'sends FixedLength messages of the right length and refuses others, per item' {
        $pair = New-FramedPair @{ Framing = 'FixedLength'; MessageLength = 3 }
        $r = Invoke-Captured { 'abc', 'toolong', ([byte[]](1, 2, 3)), 'x' | Send-TcpMessage -Connection $pair.Client }
        $r.Errors | Should -HaveCount 2
        $r.Errors | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*' }
        $r.Errors[0].TargetObject | Should -Be 'toolong'
        $r.Errors[1].TargetObject | Should -Be 'x'
        ConvertTo-Hex (Read-RawBytes $pair.Peer 6) | Should -Be '61-62-63-01-02-03'
        (Read-RawAvailable $pair.Peer -Window '200ms').Length | Should -Be 0
    }

    It 'refuses a message too long for a 1-byte prefix, and sends the others' {
        $pair = New-FramedPair @{ Framing = 'LengthPrefix'; PrefixSize = 1; MaxMessageLength = 1000 }
        $r = Invoke-Captured { Send-TcpMessage -Connection $pair.Client -Message ('x' * 256), 'ok' }
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        ConvertTo-Hex (Read-RawBytes $pair.Peer 3) | Should -Be '02-6F-6B'
    }

    It 'takes a byte[] given to -Message, or piped with the unary comma, as one message' {
        $pair = New-FramedPair @{ Framing = 'LengthPrefix'; PrefixSize = 1 }
        $bytes = [byte[]](1, 2, 3)
        Send-TcpMessage -Connection $pair.Client -Message $bytes
        , $bytes | Send-TcpMessage -Connection $pair.Client
        # Piped without the comma, the array is enumerated: a message per byte.
        $bytes | Send-TcpMessage -Connection $pair.Client
        ConvertTo-Hex (Read-RawBytes $pair.Peer 14) | Should -Be '03-01-02-03-03-01-02-03-01-01-01-02-01-03'
        $pair.Client.MessagesSent | Should -Be 5
    }

    It 'sends a TcpMessage''s Data' {
        $server = Start-TcpEchoServer -Port 0
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Send-TcpMessage -Connection $client -Message ([byte[]](0x41, 0x0D, 0x0D, 0xFF))
        $echo = Receive-TcpMessage -Connection $client -Count 1 -Timeout '00:00:05'
        $pair = New-FramedPair @{ Framing = 'LengthPrefix'; PrefixSize = 1 }
        $echo | Send-TcpMessage -Connection $pair.Client
        ConvertTo-Hex (Read-RawBytes $pair.Peer 5) | Should -Be '04-41-0D-0D-FF'
    }

    It 'sends without framing with -Raw' {
        $pair = New-FramedPair @{ Framing = 'LengthPrefix' }
        Send-TcpMessage -Connection $pair.Client -Message 'ab', ([byte[]](0x0A)) -Raw
        ConvertTo-Hex (Read-RawBytes $pair.Peer 3) | Should -Be '61-62-0A'
    }

    It 'ends Line messages with -NewLine' {
        $pair = New-FramedPair
        Send-TcpMessage -Connection $pair.Client -Message 'a', 'b' -NewLine "`r`n"
        ConvertTo-Hex (Read-RawBytes $pair.Peer 6) | Should -Be '61-0D-0A-62-0D-0A'
    }

    It 'sends one-shot with the framing parameters, then closes' {
        $listener = New-RawListener
        try {
            $sender = Start-BackgroundScript {
                param($module, $port)
                Import-Module $module
                ,[byte[]](7, 8) | Send-TcpMessage -HostName 127.0.0.1 -Port $port -Framing LengthPrefix -PrefixSize 2 -PassThru
            } -ArgumentList "$PSScriptRoot/../out/PSTcp/PSTcp.psd1", $listener.LocalEndpoint.Port
            $peer = Receive-RawConnection $listener
            ConvertTo-Hex (Read-RawToEnd $peer) | Should -Be '00-02-07-08'
            $out = Wait-BackgroundScript $sender
            $out[0].State | Should -Be 'Closed'
            $out[0].MessagesSent | Should -Be 1
        } finally {
            $listener.Stop()
            Close-RawClient $peer
        }
    }

    It 'refuses framing parameters with -Connection: the connection keeps its own framing' {
        $pair = New-FramedPair
        $r = Invoke-Captured { Send-TcpMessage -Connection $pair.Client -Message 'a' -Framing Raw }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        (Read-RawAvailable $pair.Peer -Window '200ms').Length | Should -Be 0
    }
}

Describe 'Framed echo servers' {
    BeforeAll {
        # Sends bytes one at a time, each in a read of its own: the server has counted each
        # byte before the next is sent, so prefixes and terminators are split across reads.
        function Send-Dribbled($Socket, [byte[]] $Bytes, $Server) {
            $base = $Server.BytesReceived
            for ($i = 0; $i -lt $Bytes.Length; $i++) {
                Send-RawBytes $Socket ([byte[]]@($Bytes[$i]))
                Wait-Until { $Server.BytesReceived -ge $base + $i + 1 } -IntervalMilliseconds 2 -Because "byte $i was read"
            }
        }

        $cr = [byte[]](0x0D); $lf = [byte[]](0x0A); $nul = [byte[]](0x00); $ff = [byte[]](0xFF)
    }
    AfterEach {
        Close-RawClient $peer, $other
        Clear-PSTcpState
    }

    It 'echoes <Case> byte for byte, dribbled, with Data the payload' -TestCases @(
        @{ Case = 'Line'; Framing = @{}; Frames = { param($p) Join-Bytes $p "`n" }; Payloads = { , @((Join-Bytes 'a' $cr 'b' $nul $ff), [byte[]]@(), (Join-Bytes $cr $cr 'x')) } }
        @{ Case = 'a text delimiter'; Framing = @{ Delimiter = '<END>' }; Frames = { param($p) Join-Bytes $p '<END>' }; Payloads = { , @((Join-Bytes 'a' $cr $lf $nul $ff '<EN'), [byte[]]@(), (Join-Bytes "`n")) } }
        @{ Case = 'a byte delimiter'; Framing = @{ Delimiter = [byte[]](0xFE, 0x00) }; Frames = { param($p) Join-Bytes $p ([byte[]](0xFE, 0x00)) }; Payloads = { , @((Join-Bytes $cr $lf $nul $ff ([byte[]](0xFE))), (Join-Bytes 'b')) } }
        @{ Case = 'a 4-byte big-endian prefix'; Framing = @{ Framing = 'LengthPrefix' }; Frames = { param($p) Join-Bytes ([byte[]](0, 0, 0, $p.Length)) $p }; Payloads = { , @((Join-Bytes 'a' $cr $lf $nul $ff), [byte[]]@(), (Join-Bytes $lf)) } }
        @{ Case = 'a 2-byte little-endian prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 2; ByteOrder = 'LittleEndian' }; Frames = { param($p) Join-Bytes ([byte[]]($p.Length, 0)) $p }; Payloads = { , @((Join-Bytes $cr $lf $nul $ff), (Join-Bytes 'zz')) } }
        @{ Case = 'a 1-byte prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 1 }; Frames = { param($p) Join-Bytes ([byte[]]@($p.Length)) $p }; Payloads = { , @((Join-Bytes $ff $lf), (Join-Bytes $nul)) } }
        @{ Case = 'an 8-byte little-endian prefix'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 8; ByteOrder = 'LittleEndian' }; Frames = { param($p) Join-Bytes ([byte[]]($p.Length, 0, 0, 0, 0, 0, 0, 0)) $p }; Payloads = { , @((Join-Bytes $cr $lf $nul $ff 'q')) } }
        @{ Case = 'FixedLength'; Framing = @{ Framing = 'FixedLength'; MessageLength = 4 }; Frames = { param($p) $p }; Payloads = { , @((Join-Bytes $cr $lf $nul $ff), (Join-Bytes 'abcd')) } }
    ) {
        param($Case, $Framing, $Frames, $Payloads)
        $server = Start-TcpEchoServer -Port 0 @Framing
        $peer = New-RawClient $server.Port
        $payloadList = & $Payloads
        $stream = Join-Bytes @($payloadList | ForEach-Object { , (& $Frames $_) })
        Send-Dribbled $peer $stream $server
        ConvertTo-Hex (Read-RawBytes $peer $stream.Length) | Should -Be (ConvertTo-Hex $stream)
        $messages = @(Receive-TcpMessage -Server $server -Count $payloadList.Count -Timeout '00:00:05')
        $messages | Should -HaveCount $payloadList.Count
        for ($i = 0; $i -lt $payloadList.Count; $i++) {
            ConvertTo-Hex $messages[$i].Data | Should -Be (ConvertTo-Hex $payloadList[$i])
        }
    }

    It 'echoes Raw reads exactly, each read one message' {
        $server = Start-TcpEchoServer -Port 0 -Framing Raw
        $peer = New-RawClient $server.Port
        $stream = Join-Bytes 'a' $cr $lf $nul $ff 'b'
        Send-Dribbled $peer $stream $server
        ConvertTo-Hex (Read-RawBytes $peer $stream.Length) | Should -Be (ConvertTo-Hex $stream)
        $messages = @(Receive-TcpMessage -Server $server -Count $stream.Length -Timeout '00:00:05')
        $messages | ForEach-Object { $_.Data.Length | Should -Be 1 }
        ConvertTo-Hex (Join-Bytes @($messages | ForEach-Object { , $_.Data })) | Should -Be (ConvertTo-Hex $stream)
    }

    It 'closes only the connection whose prefix declares over -MaxMessageLength, on the prefix alone' {
        $server = Start-TcpEchoServer -Port 0 -Framing LengthPrefix -PrefixSize 2 -MaxMessageLength 1000
        $job = $server | Receive-TcpMessage -AsJob
        $other = New-RawClient $server.Port
        $peer = New-RawClient $server.Port
        # 1001 declared, not one payload byte sent: the server refuses without waiting for it.
        Send-RawBytes $peer ([byte[]](0x03, 0xE9))
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
        Wait-Until { $job.Error.Count -ge 1 } -Timeout 5
        $job.Error[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong*'
        "$($server.LastError.Kind)" | Should -Be 'LineTooLong'
        # Exactly the limit is accepted, and the other connection was never disturbed.
        $frame = Join-Bytes ([byte[]](0x03, 0xE8)) ([byte[]]::new(1000))
        Send-RawBytes $other $frame
        (Read-RawBytes $other $frame.Length).Length | Should -Be 1002
    }

    It 'frames <Name> lines as encoded, aligned' -TestCases @(
        @{ Name = 'unicode' }, @{ Name = 'bigendianunicode' }, @{ Name = 'utf32' }
    ) {
        param($Name)
        $encoding = switch ($Name) { 'unicode' { [Text.Encoding]::Unicode } 'bigendianunicode' { [Text.Encoding]::BigEndianUnicode } 'utf32' { [Text.Encoding]::UTF32 } }
        $server = Start-TcpEchoServer -Port 0 -Encoding $Name
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -Encoding $Name
        # U+0A41 holds the byte 0x0A; CRLF lines lose their CR as encoded.
        $lines = 'AB', "C`u{0A41}D", 'EF'
        Send-TcpLine $client -Line $lines[0], $lines[1]
        Send-TcpLine $client -Line $lines[2] -NewLine "`r`n"
        $server.Framing.Encoding.WebName | Should -Be $encoding.WebName
        (Receive-TcpMessage -Server $server -Count 3 -Timeout '00:00:05').Text | Should -Be $lines
        (Receive-TcpMessage -Connection $client -Count 3 -Timeout '00:00:05').Text | Should -Be $lines
    }

    It 'sends Send-TcpMessage frames that a framed server reads back as the messages' {
        $server = Start-TcpEchoServer -Port 0 -Framing LengthPrefix -PrefixSize 2
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -Framing LengthPrefix -PrefixSize 2
        $binary = [byte[]](0x0D, 0x0A, 0x00, 0xFF)
        Send-TcpMessage $client -Message 'hello', $binary, ''
        $echoes = @(Receive-TcpMessage -Connection $client -Count 3 -Timeout '00:00:05')
        $echoes[0].Text | Should -Be 'hello'
        ConvertTo-Hex $echoes[1].Data | Should -Be '0D-0A-00-FF'
        # The list view shows a binary message's length beside its bytes.
        ($echoes[1] | Format-List | Out-String -Width 120) | Should -Match 'Length\s*:\s*4\s'
        $echoes[2].Data.Length | Should -Be 0
    }
}

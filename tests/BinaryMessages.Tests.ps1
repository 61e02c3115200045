# The framings of real protocols end to end without the programs (raw sockets, PSTcp's own
# client and servers), and binary messages from PowerShell: Format-Hex, the table's hex preview,
# [PSTcp.Bytes] and TcpMessage's Read* methods.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function Get-PlainText([object] $InputObject, [switch] $Table) {
        $text = if ($Table) { $InputObject | Format-Table | Out-String -Width 250 } else { $InputObject | Out-String -Width 250 }
        $text -replace "`e\[[0-9;]*m", ''
    }
    function Get-Hex([string] $Hex) { , [byte[]]@($Hex -split ' ' | ForEach-Object { [Convert]::ToByte($_, 16) }) }
}

Describe 'Protocol framings end to end' {
    AfterEach {
        Close-RawClient $peer
        Clear-PSTcpState
    }

    It 'echoes <Case> frames exactly as read, with Data the header then the payload' -TestCases @(
        @{ Case = 'PostgreSQL'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixSize = 4; LengthAdjustment = -4 }; Wire = '5A 00 00 00 05 49 44 00 00 00 04'; Data = '5A 49', '44' }
        @{ Case = 'MQTT'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixEncoding = 'Varint' }; Wire = '20 02 00 00 C0 00'; Data = '20 00 00', 'C0' }
        @{ Case = 'MySQL'; Framing = @{ Framing = 'LengthPrefix'; PrefixSize = 3; ByteOrder = 'LittleEndian'; LengthAdjustment = 1 }; Wire = '01 00 00 00 0E 02 00 00 01 00 00'; Data = '00 0E', '01 00 00' }
        @{ Case = 'TLS records'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 3; PrefixSize = 2 }; Wire = '15 03 03 00 02 02 28'; Data = , '15 03 03 02 28' }
        @{ Case = 'OctetCount'; Framing = @{ Framing = 'OctetCount' }; Wire = '33 20 61 0A 62 31 20 00'; Data = '61 0A 62', '00' }
        @{ Case = 'Netstring'; Framing = @{ Framing = 'Netstring' }; Wire = '32 3A 0D 0A 2C 30 3A 2C'; Data = '0D 0A', '' }
        @{ Case = 'MLLP markers'; Framing = @{ Framing = 'Marker'; StartMarker = 0x0B; EndMarker = 0x1C, 0x0D }; Wire = '0B 4D 53 48 0D 1C 0D 0B 1C 0D'; Data = '4D 53 48 0D', '' }
        @{ Case = 'Headers'; Framing = @{ Framing = 'Headers'; LengthHeader = 'X-Len' }; Wire = '41 0D 0A 78 2D 6C 65 6E 3A 20 31 0D 0A 0D 0A 00 42 0A 0A'; Data = '41 0D 0A 78 2D 6C 65 6E 3A 20 31 0D 0A 0D 0A 00', '42 0A 0A' }
    ) {
        param($Case, $Framing, $Wire, $Data)
        $server = Start-TcpEchoServer -Port 0 @Framing
        $peer = New-RawClient $server.Port
        $stream = Get-Hex $Wire
        # One byte at a time: every field split.
        foreach ($b in $stream) { Send-RawBytes $peer ([byte[]]@($b)) }
        ConvertTo-Hex (Read-RawBytes $peer $stream.Length) | Should -Be (ConvertTo-Hex $stream)
        $messages = @(Receive-TcpMessage -Server $server -Count $Data.Count -Timeout 5)
        $messages | Should -HaveCount $Data.Count
        for ($i = 0; $i -lt $Data.Count; $i++) {
            $expected = if ($Data[$i]) { ConvertTo-Hex (Get-Hex $Data[$i]) } else { '' }
            ConvertTo-Hex $messages[$i].Data | Should -Be $expected
        }
    }

    It 'sends <Case> framed by Send-TcpMessage, on a connection and one-shot' -TestCases @(
        @{ Case = 'PostgreSQL'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixSize = 4; LengthAdjustment = -4 }; Message = '5A 49'; Wire = '5A 00 00 00 05 49' }
        @{ Case = 'MQTT'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixEncoding = 'Varint' }; Message = '20 00 00'; Wire = '20 02 00 00' }
        @{ Case = 'OctetCount'; Framing = @{ Framing = 'OctetCount' }; Message = '61 20 62'; Wire = '33 20 61 20 62' }
        @{ Case = 'Netstring'; Framing = @{ Framing = 'Netstring' }; Message = '2C'; Wire = '31 3A 2C 2C' }
        @{ Case = 'MLLP markers'; Framing = @{ Framing = 'Marker'; StartMarker = 0x0B; EndMarker = 0x1C, 0x0D }; Message = '4D'; Wire = '0B 4D 1C 0D' }
        @{ Case = 'Headers'; Framing = @{ Framing = 'Headers' }; Message = '41 0A 0A'; Wire = '41 0A 0A' }
    ) {
        param($Case, $Framing, $Message, $Wire)
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port @Framing
            $peer = Receive-RawConnection $listener
            Send-TcpMessage $client (Get-Hex $Message)
            $expected = Get-Hex $Wire
            ConvertTo-Hex (Read-RawBytes $peer $expected.Length) | Should -Be (ConvertTo-Hex $expected)
            Close-RawClient $peer

            Send-TcpMessage -HostName 127.0.0.1 -Port $listener.LocalEndpoint.Port (Get-Hex $Message) @Framing
            $peer = Receive-RawConnection $listener
            ConvertTo-Hex (Read-RawToEnd $peer) | Should -Be (ConvertTo-Hex $expected)
        } finally { $listener.Stop() }
    }

    It 'refuses, per item, a Headers message whose body is not its Content-Length' {
        $server = Start-TcpEchoServer -Port 0 -Framing Headers
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -Framing Headers
        $sent = Invoke-Captured { "PUT / X`r`nContent-Length: 9`r`n`r`nshort", "GET / X`r`n`r`n" | Send-TcpMessage $client }
        $sent.Errors | Should -HaveCount 1
        $sent.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument*'
        "$($sent.Errors[0])" | Should -Match 'Content-Length'
        (Receive-TcpMessage $client -Count 1 -Timeout 5).Text | Should -Be "GET / X`r`n`r`n"
    }

    It 'closes with LineTooLong on a declared length over -MaxMessageLength before the payload comes, for <Case>' -TestCases @(
        @{ Case = 'PostgreSQL'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixSize = 4; LengthAdjustment = -4 }; Header = '44 00 00 00 6D' }
        @{ Case = 'MQTT'; Framing = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixEncoding = 'Varint' }; Header = '30 6A' }
        @{ Case = 'OctetCount'; Framing = @{ Framing = 'OctetCount' }; Header = '31 30 31' }
        @{ Case = 'Headers'; Framing = @{ Framing = 'Headers' }; Header = '41 0D 0A 43 6F 6E 74 65 6E 74 2D 4C 65 6E 67 74 68 3A 20 39 39 0D 0A 0D 0A' }
    ) {
        param($Case, $Framing, $Header)
        $listener = New-RawListener
        try {
            $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port @Framing -MaxMessageLength 100
            $peer = Receive-RawConnection $listener
        } finally { $listener.Stop() }
        # The header alone: the client refuses without waiting for any payload.
        Send-RawBytes $peer (Get-Hex $Header)
        $got = Invoke-Captured { Receive-TcpMessage $client -Count 1 -Timeout 10 }
        $got.Output | Should -HaveCount 0
        $got.Errors[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong*'
        $got.Elapsed.TotalSeconds | Should -BeLessThan 9
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
    }

    It 'closes with LineTooLong, saying why, on bytes that cannot be a frame' {
        $server = Start-TcpEchoServer -Port 0 -Framing Netstring
        $job = $server | Receive-TcpMessage -AsJob
        $peer = New-RawClient $server.Port
        Send-RawBytes $peer (ConvertTo-Bytes '3:abc;')
        Test-RawClosed $peer -Timeout 5 | Should -BeTrue
        Wait-Until { $job.Error.Count -ge 1 } -Timeout 5
        $job.Error[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong*'
        "$($job.Error[0])" | Should -Match 'malformed.*not '','''
    }

    It 'refuses <Case> with InvalidArgument' -TestCases @(
        @{ Case = '-PrefixOffset with Line framing'; Parameters = @{ PrefixOffset = 1 } }
        @{ Case = '-LengthAdjustment with Raw framing'; Parameters = @{ Framing = 'Raw'; LengthAdjustment = -4 } }
        @{ Case = '-PrefixEncoding with OctetCount framing'; Parameters = @{ Framing = 'OctetCount'; PrefixEncoding = 'Varint' } }
        @{ Case = '-PrefixSize with a varint'; Parameters = @{ Framing = 'LengthPrefix'; PrefixEncoding = 'Varint'; PrefixSize = 2 } }
        @{ Case = '-LengthHeader with Line framing'; Parameters = @{ LengthHeader = 'X-Len' } }
        @{ Case = 'a -LengthHeader that is not a name'; Parameters = @{ Framing = 'Headers'; LengthHeader = 'Content Length' } }
        @{ Case = 'Marker framing without -EndMarker'; Parameters = @{ Framing = 'Marker'; StartMarker = 0x0B } }
        @{ Case = '-EndMarker with Delimiter framing'; Parameters = @{ Delimiter = ';'; EndMarker = 0x0D } }
    ) {
        param($Case, $Parameters)
        $server = Invoke-Captured { Start-TcpEchoServer -Port 0 @Parameters }
        $server.Errors | Should -HaveCount 1
        $server.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }

    It 'hands a handler and a relay''s queue the header then the payload, forwarding the bytes unchanged' {
        $pg = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixSize = 4; LengthAdjustment = -4 }
        # The handler answers a message with its Data reversed: 'Q','a','b' comes back 'b','a','Q'.
        $server = Start-TcpServer -Port 0 @pg -ScriptBlock { param($Message) $d = $Message.Data.Clone(); [array]::Reverse($d); , $d }
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $server.Port @pg
        $peer = New-RawClient $relay.Port
        $frames = Get-Hex '51 00 00 00 06 61 62 44 00 00 00 04'
        foreach ($b in $frames) { Send-RawBytes $peer ([byte[]]@($b)) }
        $answers = Get-Hex '62 00 00 00 06 61 51 44 00 00 00 04'
        ConvertTo-Hex (Read-RawBytes $peer $answers.Length) | Should -Be (ConvertTo-Hex $answers)
        $seen = @(Receive-TcpMessage -Server $relay -Count 4 -Timeout 5)
        @($seen | ForEach-Object { "$($_.Direction):$(ConvertTo-Hex $_.Data)" }) | Sort-Object | Should -Be @(
            'ClientToTarget:44', 'ClientToTarget:51-61-62', 'TargetToClient:44', 'TargetToClient:62-61-51')
        @(Receive-TcpMessage -Server $server -Count 2 -Timeout 5 | ForEach-Object { ConvertTo-Hex $_.Data }) | Should -Be @('51-61-62', '44')
    }

    It 'answers through a handler with the framing: an MLLP acknowledgement' {
        $server = Start-TcpServer -Port 0 -Framing Marker -StartMarker 0x0B -EndMarker 0x1C, 0x0D -ScriptBlock {
            param($Message)
            'MSA|AA|' + $Message.Text.Split('|')[1]
        }
        $reply = Invoke-TcpRequest 127.0.0.1 $server.Port -Message 'MSH|42|ADT' -Framing Marker -StartMarker 0x0B -EndMarker 0x1C, 0x0D -Count 1
        $reply.Text | Should -Be 'MSA|AA|42'
        (Receive-TcpMessage -Server $server -Count 1 -Timeout 5).Text | Should -Be 'MSH|42|ADT'
    }
}

Describe 'Binary messages in PowerShell' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -Framing LengthPrefix -PrefixSize 2
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port -Framing LengthPrefix -PrefixSize 2
        $binary = [PSTcp.Bytes]::Join([PSTcp.Bytes]::UInt32BE(7), [PSTcp.Bytes]::Varint(300), [PSTcp.Bytes]::CString('name'),
            [PSTcp.Bytes]::UInt16LE(0x0102), [PSTcp.Bytes]::Int64BE(-2), [PSTcp.Bytes]::UInt24LE(0x030201), 0xFF)
        Send-TcpMessage $client $binary, "tab`there`r", 'plain text'
        $messages = @(Receive-TcpMessage $client -Count 3 -Timeout 5)
    }
    AfterAll { Clear-PSTcpState }

    It 'builds big-endian fields with [PSTcp.Bytes] and reads them back with the message''s methods' {
        $m = $messages[0]
        $m.Length | Should -Be 25
        ConvertTo-Hex $m.ReadBytes(0, 6) | Should -Be '00-00-00-07-AC-02'
        $m.ReadUInt32(0) | Should -Be 7
        $m.ReadUInt16(2) | Should -Be 7
        $length = 0
        $m.ReadVarint(4, [ref]$length) | Should -Be 300
        $length | Should -Be 2
        $m.ReadCString(6) | Should -Be 'name'
        $m.ReadUInt16(11, 'LittleEndian') | Should -Be 0x0102
        $m.ReadUInt16(11) | Should -Be 0x0201
        $m.ReadInt64(13) | Should -Be -2
        $m.ReadUInt64(13) | Should -Be ([uint64]::MaxValue - 1)
        $m.ReadUInt24(21, 'LittleEndian') | Should -Be 0x030201
        $m.ReadInt32(0) | Should -Be 7
        $m.ReadString(6, 4) | Should -Be 'name'
        [PSTcp.Bytes]::ReadUInt32($m.Data, 0) | Should -Be 7
        { $m.ReadUInt32(22) } | Should -Throw '*past the end*'
        { [PSTcp.Bytes]::Join(256) } | Should -Throw '*0 to 255*'
        ConvertTo-Hex ([PSTcp.Bytes]::Int32LE(-2)) | Should -Be 'FE-FF-FF-FF'
        ConvertTo-Hex ([PSTcp.Bytes]::UInt64BE(1)) | Should -Be '00-00-00-00-00-00-00-01'
    }

    It 'pipes TcpMessages into Format-Hex as their Data, one block each' {
        # Rows of 16 bytes: the 25-byte message takes two, each block starting at offset 0.
        $hex = @($messages[0], $messages[2] | Format-Hex)
        $hex | Should -HaveCount 3
        @($hex | ForEach-Object Offset64) | Should -Be @(0, 16, 0)
        ConvertTo-Hex (Join-Bytes $hex[0].Bytes $hex[1].Bytes) | Should -Be (ConvertTo-Hex $messages[0].Data)
        ConvertTo-Hex $hex[2].Bytes | Should -Be (ConvertTo-Hex $messages[2].Data)
        ConvertTo-Hex (Format-Hex -InputObject $messages[2]).Bytes | Should -Be (ConvertTo-Hex $messages[2].Data)
        (Get-PlainText ($messages[0] | Format-Hex)) | Should -Match '00 00 00 07 AC 02 6E 61 6D 65 00'
    }

    It 'leaves everything else to the built-in Format-Hex' {
        (Get-Command Format-Hex).Source | Should -Be 'PSTcp'
        ConvertTo-Hex ('abc' | Format-Hex).Bytes | Should -Be '61-62-63'
        $file = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-hex-$([guid]::NewGuid().ToString('N')).bin"
        try {
            [System.IO.File]::WriteAllBytes($file, [byte[]](1, 2, 3, 4))
            ConvertTo-Hex (Format-Hex -Path $file -Count 2).Bytes | Should -Be '01-02'
        } finally { Remove-Item $file -ErrorAction Ignore }
        ConvertTo-Hex (Microsoft.PowerShell.Utility\Format-Hex -InputObject 'xy').Bytes | Should -Be '78-79'
    }

    It 'shows a binary message''s length and first bytes in hex in the table, and text with control characters escaped' {
        $table = Get-PlainText $messages -Table
        $table | Should -Match ([regex]::Escape('[25 B] 00 00 00 07 AC 02 6E 61 6D 65 00 02 01 FF FF FF') + ' …')
        $table | Should -Match ([regex]::Escape('tab\there\r'))
        $table | Should -Match 'plain text'
        $table | Should -Not -Match "`t"
    }
}

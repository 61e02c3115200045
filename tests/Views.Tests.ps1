#requires -Version 7.0
# Views: at 80 columns the message table leaves most of the line to Text, and counts use
# thousands separators in every view.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function Get-PlainText([object] $InputObject, [int] $Width = 80, [switch] $List) {
        $text = if ($List) { $InputObject | Format-List | Out-String -Width $Width } else { $InputObject | Out-String -Width $Width }
        $text -replace "`e\[[0-9;]*m", ''
    }
}

Describe 'Default views' {
    BeforeAll {
        $server = Start-TcpEchoServer -Port 0 -Name "views-$([guid]::NewGuid().ToString('N'))"
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        $long = 'the quick brown fox jumps over the lazy dog, again and again'
        Send-TcpLine $client $long
        1..1499 | Send-TcpLine $client
        $messages = @(Receive-TcpMessage -Server $server -Count 1500 -Timeout 20)
        Wait-Until { $client.MessagesReceived -eq 1500 } -Timeout 20
    }
    AfterAll { Clear-PSTcpState }

    It 'gives Text most of an 80-column message table' {
        $lines = (Get-PlainText $messages[0]) -split "`r?`n" | Where-Object { $_.Trim() }
        $header = $lines[0]
        $header.Length | Should -BeLessOrEqual 80
        $header | Should -Match 'Text$'
        $row = $lines[2]
        $text = $row.Substring($header.IndexOf('Text'))
        $text.Length | Should -BeGreaterOrEqual 35 -Because 'Text gets what the other columns leave: most of the line'
        $long | Should -BeLike "$($text.TrimEnd('…'))*"
    }

    It 'writes sequence numbers with thousands separators in the message table' {
        $sep = [cultureinfo]::CurrentCulture.NumberFormat.NumberGroupSeparator
        (Get-PlainText $messages[-1]) | Should -Match ([regex]::Escape("1${sep}500") + ' +1499')
    }

    It 'writes counts with thousands separators in the server and connection views' {
        $sep = [regex]::Escape([cultureinfo]::CurrentCulture.NumberFormat.NumberGroupSeparator)
        (Get-PlainText $server -Width 120) | Should -Match "\b1${sep}500\b"
        (Get-PlainText $client -Width 120) | Should -Match "\b1${sep}500 +1${sep}500\b"
        $serverList = Get-PlainText $server -Width 120 -List
        $serverList | Should -Match "MessagesReceived\s*:\s*1${sep}500"
        $serverList | Should -Match "Queue\s*:\s*0 of 10${sep}000"
        $serverList | Should -Match "max 10${sep}000"
        $clientList = Get-PlainText $client -Width 120 -List
        $clientList | Should -Match "Sent\s*:\s*1${sep}500 messages"
        $clientList | Should -Match "Received\s*:\s*1${sep}500 messages"
        (Get-PlainText $messages[-1] -List) | Should -Match "Sequence\s*:\s*1${sep}500"
    }
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function New-LineBlock([string] $Prefix, [int] $Count) {
        $builder = [System.Text.StringBuilder]::new()
        for ($i = 1; $i -le $Count; $i++) { $null = $builder.Append($Prefix).Append($i).Append("`n") }
        , (ConvertTo-Bytes $builder.ToString())
    }

    # $server is the calling test's server (dynamic scope).
    function Get-LiveServer { Get-TcpServer -Id $server.Id }
}

Describe 'Full queue with a drop mode' {
    BeforeEach { $client = $null }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'DropNewest keeps the first 100 of 150 and counts 50 dropped' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 100 -QueueFullMode DropNewest
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'n' 150
        Send-RawBytes $client $wire
        # The echo keeps flowing in a drop mode.
        $null = Read-RawBytes $client $wire.Length
        Wait-Until { $l = Get-LiveServer; $l.MessagesReceived -eq 150 -and $l.QueueLength + $l.MessagesDropped -ge 150 } -Because 'every line queued or dropped'
        $live = Get-LiveServer
        $live.MessagesDropped | Should -Be 50
        $live.QueueLength | Should -Be 100
        $kept = @(Receive-TcpMessage -Server $server -Count 100 -Timeout ([TimeSpan]::FromSeconds(10)) -WarningAction SilentlyContinue)
        $kept | Should -HaveCount 100
        [System.Linq.Enumerable]::SequenceEqual([string[]]$kept.Text, [string[]](1..100 | ForEach-Object { "n$_" })) | Should -BeTrue
        (Get-LiveServer).QueueLength | Should -Be 0
    }

    It 'DropOldest (the default) keeps the last 100 of 150 and counts 50 dropped' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 100
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'o' 150
        Send-RawBytes $client $wire
        $null = Read-RawBytes $client $wire.Length
        Wait-Until { $l = Get-LiveServer; $l.MessagesReceived -eq 150 -and $l.QueueLength + $l.MessagesDropped -ge 150 } -Because 'every line queued or dropped'
        (Get-LiveServer).MessagesDropped | Should -Be 50
        $kept = @(Receive-TcpMessage -Server $server -Count 100 -Timeout ([TimeSpan]::FromSeconds(10)) -WarningAction SilentlyContinue)
        $kept | Should -HaveCount 100
        [System.Linq.Enumerable]::SequenceEqual([string[]]$kept.Text, [string[]](51..150 | ForEach-Object { "o$_" })) | Should -BeTrue
        # Sequence still numbers arrival, so the kept ones are 51..150.
        $kept[0].Sequence | Should -Be 51
    }

    It 'counts drops on the connection too' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 10 -QueueFullMode DropOldest
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'c' 25
        Send-RawBytes $client $wire
        $null = Read-RawBytes $client $wire.Length
        Wait-Until { (Get-LiveServer).MessagesDropped -eq 15 }
        $connection = @(Get-TcpConnection -Server $server)
        $connection | Should -HaveCount 1
        $connection[0].MessagesDropped | Should -Be 15
    }

    It 'reports the drop once, as a warning, on the next Receive-TcpMessage' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 100 -QueueFullMode DropOldest
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'w' 150
        Send-RawBytes $client $wire
        $null = Read-RawBytes $client $wire.Length
        Wait-Until { (Get-LiveServer).MessagesDropped -eq 50 }

        $first = @(Receive-TcpMessage -Server $server -Count 10 -Timeout ([TimeSpan]::FromSeconds(10)) -WarningVariable wv1 -WarningAction SilentlyContinue)
        $first | Should -HaveCount 10
        @($wv1) | Should -HaveCount 1
        "$($wv1[0])" | Should -Match '50'

        $second = @(Receive-TcpMessage -Server $server -Count 10 -Timeout ([TimeSpan]::FromSeconds(10)) -WarningVariable wv2 -WarningAction SilentlyContinue)
        $second | Should -HaveCount 10
        @($wv2) | Should -HaveCount 0
    }

    It 'reports the drop once in a consumer job' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 20 -QueueFullMode DropOldest
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'j' 30
        Send-RawBytes $client $wire
        $null = Read-RawBytes $client $wire.Length
        Wait-Until { (Get-LiveServer).MessagesDropped -eq 10 }
        $job = Receive-TcpMessage -Server $server -AsJob
        $server | Stop-TcpServer
        $null = Wait-Job $job -Timeout 15
        $got = @(Receive-Job $job -WarningVariable jw -WarningAction SilentlyContinue)
        $got | Should -HaveCount 20
        @($jw) | Should -HaveCount 1
    }
}

Describe 'Full queue in Wait mode' {
    BeforeEach { $client = $null }
    AfterEach {
        Close-RawClient $client
        Clear-PSTcpState
    }

    It 'loses nothing: 500 lines through a queue of 10, and the echo pauses until a consumer drains' {
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 10 -QueueFullMode Wait
        $client = New-RawClient $server.Port
        $wire = New-LineBlock 'q' 500
        $all = (ConvertFrom-Bytes $wire) -split "(?<=`n)"
        $firstPart = ConvertTo-Bytes (-join $all[0..99])
        $secondPart = ConvertTo-Bytes (-join $all[100..499])
        # The first 100 lines fill the queue; once it is full, the connection is paused.
        Send-RawBytes $client $firstPart
        Wait-Until { (Get-LiveServer).QueueLength -eq 10 } -Because 'the queue to fill'
        Send-RawBytes $client $secondPart
        # Nothing consumes, so reading from the connection is paused: the echo of the later
        # lines does not come back, and they are not counted as received.
        $early = Read-RawAvailable $client -Window '700ms' -MaxBytes $wire.Length
        $early.Length | Should -BeLessThan $wire.Length
        $early.Length | Should -Not -BeGreaterThan $firstPart.Length
        (Get-LiveServer).MessagesReceived | Should -BeLessThan 500
        (Get-LiveServer).MessagesDropped | Should -Be 0

        $received = @(Receive-TcpMessage -Server $server -Count 500 -Timeout ([TimeSpan]::FromSeconds(30)))
        $received | Should -HaveCount 500
        [System.Linq.Enumerable]::SequenceEqual([string[]]$received.Text, [string[]](1..500 | ForEach-Object { "q$_" })) | Should -BeTrue

        # Every echo arrives after the drain, byte for byte.
        $rest = Read-RawBytes $client ($wire.Length - $early.Length) -Timeout 15
        [System.Linq.Enumerable]::SequenceEqual([byte[]](Join-Bytes $early $rest), [byte[]]$wire) | Should -BeTrue
        $live = Get-LiveServer
        $live.MessagesDropped | Should -Be 0
        $live.MessagesReceived | Should -Be 500
    }

    It 'applies Wait to a client connection queue without losing echoes' {
        $server = Start-TcpEchoServer -Port 0
        $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -QueueCapacity 5 -QueueFullMode Wait
        1..200 | ForEach-Object { "cw$_" } | Send-TcpLine -Connection $c
        $echo = @(Receive-TcpMessage -Connection $c -Count 200 -Timeout ([TimeSpan]::FromSeconds(30)))
        $echo | Should -HaveCount 200
        $echo.Text | Should -BeExactly ([string[]](1..200 | ForEach-Object { "cw$_" }))
        $c.MessagesDropped | Should -Be 0
    }
}

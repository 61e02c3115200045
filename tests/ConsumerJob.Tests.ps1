BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # Lines "<prefix>1" .. "<prefix>N" as one UTF-8 buffer.
    function New-LineBlock([string] $Prefix, [int] $Count, [int] $Start = 1) {
        $builder = [System.Text.StringBuilder]::new()
        for ($i = $Start; $i -lt $Start + $Count; $i++) { $null = $builder.Append($Prefix).Append($i).Append("`n") }
        , (ConvertTo-Bytes $builder.ToString())
    }

    # Receives from a job until at least $Count objects arrived (or throws on timeout).
    function Receive-JobUntil($Job, [int] $Count, [object] $Timeout = 20) {
        $got = [System.Collections.Generic.List[object]]::new()
        Wait-Until { foreach ($m in @(Receive-Job -Job $Job)) { $got.Add($m) }; $got.Count -ge $Count } -Timeout $Timeout -Because "$Count messages from job $($Job.Id) (have $($got.Count))"
        , $got.ToArray()
    }

    # $server is the calling test's server (dynamic scope).
    function Get-LiveServer { Get-TcpServer -Id $server.Id }
}

Describe 'Receive-TcpMessage -AsJob' {
    BeforeEach {
        $server = Start-TcpEchoServer -Port 0 -Name "job-$([guid]::NewGuid().ToString('N'))"
        $clients = [System.Collections.Generic.List[object]]::new()
        $background = $null
    }
    AfterEach {
        Stop-BackgroundScript $background
        Close-RawClient $clients.ToArray()
        Clear-PSTcpState
    }

    It 'returns a running TcpConsumerJob that Get-Job lists' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $job | Should -HaveCount 1
        $job | Should -BeOfType [System.Management.Automation.Job]
        $job.PSJobTypeName | Should -BeExactly 'TcpConsumerJob'
        $job.State | Should -Be 'Running'
        $listed = @(Get-Job -Id $job.Id)
        $listed | Should -HaveCount 1
        $listed[0].InstanceId | Should -Be $job.InstanceId
        @(Get-Job | Where-Object PSJobTypeName -eq 'TcpConsumerJob').Id | Should -Contain $job.Id
    }

    It 'takes its name from -Name' {
        $name = "consumer-$([guid]::NewGuid().ToString('N'))"
        $job = Receive-TcpMessage -Server $server -AsJob -Name $name
        $job.Name | Should -BeExactly $name
        @(Get-Job -Name $name).Id | Should -Be @($job.Id)
    }

    It 'gets 1000 lines from 4 concurrent clients, per connection in order with Sequence 1..n' {
        $job = Receive-TcpMessage -Server $server -AsJob
        for ($k = 1; $k -le 4; $k++) { $clients.Add((New-RawClient $server.Port)) }
        # Interleave the four senders in chunks of 10 lines.
        for ($chunk = 0; $chunk -lt 25; $chunk++) {
            for ($k = 1; $k -le 4; $k++) {
                Send-RawBytes $clients[$k - 1] (New-LineBlock "c$k-" 10 ($chunk * 10 + 1))
            }
        }
        $got = Receive-JobUntil $job 1000
        # Nothing beyond the 1000 once the source ends.
        $server | Stop-TcpServer
        $null = Wait-Job $job -Timeout 15
        $got = @($got) + @(Receive-Job $job)
        $got | Should -HaveCount 1000

        $groups = @($got | Group-Object ConnectionId)
        $groups | Should -HaveCount 4
        foreach ($g in $groups) {
            $g.Count | Should -Be 250
            $prefix = ($g.Group[0].Text -split '-')[0]
            $expectedText = [string[]](1..250 | ForEach-Object { "$prefix-$_" })
            [System.Linq.Enumerable]::SequenceEqual([string[]]$g.Group.Text, $expectedText) | Should -BeTrue -Because "connection $($g.Name) keeps its order"
            [System.Linq.Enumerable]::SequenceEqual([long[]]$g.Group.Sequence, [long[]](1..250)) | Should -BeTrue
        }
        ($groups | ForEach-Object { ($_.Group[0].Text -split '-')[0] } | Sort-Object) | Should -Be @('c1', 'c2', 'c3', 'c4')
    }

    It 'gets lines that arrived before it started (queued from server start)' {
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] (New-LineBlock 'early-' 20)
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 20 } -Because 'the lines to be read'
        $job = Receive-TcpMessage -Server $server -AsJob
        $got = Receive-JobUntil $job 20
        $got | Should -HaveCount 20
        $got.Text | Should -Be ([string[]](1..20 | ForEach-Object { "early-$_" }))
    }

    It 'drains and ends Completed when the server stops' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] (New-LineBlock 'drain-' 300)
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 300 }
        $server | Stop-TcpServer
        $waited = Wait-Job $job -Timeout 15
        $waited | Should -Not -BeNullOrEmpty -Because 'Wait-Job returns the job once it finished'
        $job.State | Should -Be 'Completed'
        $got = @(Receive-Job $job)
        $got | Should -HaveCount 300
        [System.Linq.Enumerable]::SequenceEqual([string[]]$got.Text, [string[]](1..300 | ForEach-Object { "drain-$_" })) | Should -BeTrue
    }

    It 'supports Receive-Job -Keep' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] "k1`nk2`nk3`nk4`nk5`n"
        Wait-Until { @(Receive-Job $job -Keep).Count -ge 5 }
        $kept = @(Receive-Job $job -Keep)
        $kept | Should -HaveCount 5
        $kept.Text | Should -Be @('k1', 'k2', 'k3', 'k4', 'k5')
        $taken = @(Receive-Job $job)
        $taken.Text | Should -Be @('k1', 'k2', 'k3', 'k4', 'k5')
        @(Receive-Job $job) | Should -HaveCount 0
    }

    It 'supports Receive-Job -Wait, which returns everything once the source ends' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] (New-LineBlock 'w-' 50)
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 50 }
        # Receive-Job -Wait blocks, so it runs on another thread; this one ends the source.
        $background = Start-BackgroundScript { param($j) Receive-Job -Job $j -Wait } -ArgumentList $job
        Wait-Until { $background.PowerShell.InvocationStateInfo.State -eq 'Running' }
        $server | Stop-TcpServer
        $got = Wait-BackgroundScript $background -Timeout 20
        $got | Should -HaveCount 50
        $got.Text | Should -Be ([string[]](1..50 | ForEach-Object { "w-$_" }))
        $job.State | Should -Be 'Completed'
    }

    It 'works with Wait-Job' {
        $job = Receive-TcpMessage -Server $server -AsJob
        # Still running: Wait-Job times out and returns nothing.
        @(Wait-Job $job -Timeout 1) | Should -HaveCount 0
        $server | Stop-TcpServer
        $done = @(Wait-Job $job -Timeout 15)
        $done | Should -HaveCount 1
        $done[0].Id | Should -Be $job.Id
        $job.State | Should -Be 'Completed'
    }

    It 'stops promptly with Stop-Job while messages flow' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $stopFlag = [System.Threading.ManualResetEventSlim]::new($false)
        $sender = {
            param($Port, $StopFlag, $Helpers)
            Import-Module $Helpers
            $socket = New-RawClient $Port
            $socket.SendTimeout = 5000
            $builder = [System.Text.StringBuilder]::new()
            for ($i = 0; $i -lt 200; $i++) { $null = $builder.Append("flowing line $i`n") }
            $chunk = ConvertTo-Bytes $builder.ToString()
            $sink = [byte[]]::new(65536)
            $sent = 0
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            try {
                # Bounded in time and count; drains its echoes so the server never stalls on it.
                while (-not $StopFlag.IsSet -and $watch.Elapsed.TotalSeconds -lt 30 -and $sent -lt 100000) {
                    Send-RawBytes $socket $chunk
                    $sent++
                    while ($socket.Available -gt 0) { $null = $socket.Receive($sink) }
                }
            } finally { $socket.Dispose() }
            $sent
        }
        $background = Start-BackgroundScript $sender -ArgumentList $server.Port, $stopFlag, "$PSScriptRoot/TestHelpers.psm1"
        try {
            Wait-Until { $job.HasMoreData -and (Get-LiveServer).MessagesReceived -gt 2000 } -Because 'messages to flow into the job'
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            Stop-Job $job
            $watch.Stop()
            $job.State | Should -Be 'Stopped'
            $background.Async.IsCompleted | Should -BeFalse -Because 'the sender was still sending during Stop-Job'
            $watch.Elapsed.TotalMilliseconds | Should -BeLessThan 1000
        } finally {
            $stopFlag.Set()
        }
        $chunks = Wait-BackgroundScript $background -Timeout 15
        $chunks[0] | Should -BeGreaterThan 0
    }

    It 'refuses Remove-Job on a running job without -Force, and removes it with -Force' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $r = Invoke-Captured { Remove-Job $job }
        $r.Errors.Count | Should -BeGreaterThan 0
        @(Get-Job -Id $job.Id -ErrorAction SilentlyContinue) | Should -HaveCount 1
        $r = Invoke-Captured { Remove-Job $job -Force }
        $r.Errors | Should -HaveCount 0
        @(Get-Job -Id $job.Id -ErrorAction SilentlyContinue) | Should -HaveCount 0
        # The server still runs and queues for the next consumer.
        (Get-LiveServer).State | Should -Be 'Running'
    }

    It 'removes a finished job with Remove-Job' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $server | Stop-TcpServer
        $null = Wait-Job $job -Timeout 15
        $job.State | Should -Be 'Completed'
        Remove-Job $job
        @(Get-Job -Id $job.Id -ErrorAction SilentlyContinue) | Should -HaveCount 0
    }

    It 'outputs PSTcp.TcpMessage objects with every property set' {
        $job = Receive-TcpMessage -Server $server -AsJob
        $before = [DateTimeOffset]::Now.AddSeconds(-1)
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] "first`nsecond`n"
        $got = Receive-JobUntil $job 2
        $after = [DateTimeOffset]::Now.AddSeconds(1)
        $got | Should -HaveCount 2
        $connection = @(Get-TcpConnection -Server $server)
        $connection | Should -HaveCount 1
        $m = $got[1]
        $m.PSObject.TypeNames | Should -Contain 'PSTcp.TcpMessage'
        $m.Timestamp | Should -BeOfType [DateTimeOffset]
        $m.Timestamp | Should -BeGreaterThan $before
        $m.Timestamp | Should -BeLessThan $after
        $got[0].Timestamp | Should -Not -BeGreaterThan $m.Timestamp
        $m.Text | Should -BeExactly 'second'
        , $m.Data | Should -BeOfType [byte[]]
        ConvertFrom-Bytes $m.Data | Should -BeExactly 'second'
        $m.ConnectionId | Should -Be $connection[0].Id
        $m.RemoteEndPoint | Should -BeOfType [System.Net.IPEndPoint]
        $m.RemoteEndPoint.Port | Should -Be $clients[0].LocalEndPoint.Port
        $m.LocalEndPoint.Port | Should -Be $server.Port
        $m.LocalEndPoint.Address.ToString() | Should -Be '127.0.0.1'
        $m.Source | Should -BeExactly $server.Name
        $m.Sequence | Should -Be 2
        $got[0].Sequence | Should -Be 1
    }

    It 'reads no more than the queue capacity ahead when nobody calls Receive-Job' {
        Stop-TcpServer -Id $server.Id
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 50 -QueueFullMode DropOldest
        $job = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        $wire = New-LineBlock 'ahead-' 500
        Send-RawBytes $clients[0] $wire
        $null = Read-RawBytes $clients[0] $wire.Length
        # The job holds at most 50 unreceived, the queue 50: the rest must be dropped.
        Wait-Until { $l = Get-LiveServer; $l.MessagesReceived -eq 500 -and $l.MessagesDropped -ge 400 } -Because 'the job to stop taking messages nobody receives'
        $server | Stop-TcpServer
        $null = Wait-Job $job -Timeout 15
        $job.State | Should -Be 'Completed'
        $got = @(Receive-Job $job -WarningAction SilentlyContinue)
        $got.Count | Should -BeLessOrEqual 101
        ($got.Count + $server.MessagesDropped) | Should -Be 500
        # Whatever was kept is in order.
        $numbers = [int[]]($got.Text | ForEach-Object { $_.Substring(6) })
        [System.Linq.Enumerable]::SequenceEqual($numbers, [int[]]($numbers | Sort-Object)) | Should -BeTrue
        $got[-1].Text | Should -BeExactly 'ahead-500'
    }

    It 'holds at most 4096 unreceived while the source is live, and everything once it ends' {
        Stop-TcpServer -Id $server.Id
        $server = Start-TcpEchoServer -Port 0 -QueueCapacity 100000
        $job = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        $wire = New-LineBlock 'held-' 10000
        Send-RawBytes $clients[0] $wire
        $null = Read-RawBytes $clients[0] $wire.Length
        Wait-Until { $job.Output.Count -eq 4096 -and (Get-LiveServer).QueueLength -eq (10000 - 4096) } -Because 'the job to stop at its read-ahead cap, leaving the rest queued'
        $server | Stop-TcpServer
        # The source ended: the job takes the rest and completes without anyone receiving.
        $null = Wait-Job $job -Timeout 15
        $job.State | Should -Be 'Completed'
        $got = @(Receive-Job $job)
        $got.Count | Should -Be 10000
        $got[-1].Text | Should -BeExactly 'held-10000'
    }

    It 'shares messages between two consumers, each delivered once' {
        $job1 = Receive-TcpMessage -Server $server -AsJob
        $job2 = Receive-TcpMessage -Server $server -AsJob
        $clients.Add((New-RawClient $server.Port))
        $clients.Add((New-RawClient $server.Port))
        Send-RawBytes $clients[0] (New-LineBlock 'x-' 300)
        Send-RawBytes $clients[1] (New-LineBlock 'y-' 300)
        Wait-Until { (Get-LiveServer).MessagesReceived -eq 600 }
        $server | Stop-TcpServer
        $null = Wait-Job $job1, $job2 -Timeout 15
        $job1.State | Should -Be 'Completed'
        $job2.State | Should -Be 'Completed'
        $all = @(Receive-Job $job1) + @(Receive-Job $job2)
        $all | Should -HaveCount 600
        $texts = @($all.Text | Sort-Object -Unique)
        $texts | Should -HaveCount 600
        $expected = @((1..300 | ForEach-Object { "x-$_" }) + (1..300 | ForEach-Object { "y-$_" }) | Sort-Object)
        [System.Linq.Enumerable]::SequenceEqual([string[]]$texts, [string[]]$expected) | Should -BeTrue
        $server.MessagesDropped | Should -Be 0
    }
}

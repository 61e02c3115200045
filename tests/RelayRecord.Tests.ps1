# Record and replay (SPEC "Test doubles", Recording): Start-TcpRelay -RecordPath/-RecordMode records
# a real redis-server's answers to redis-cli; with redis-server stopped, Start-TcpServer -ReplayPath
# and the relay in Once and None mode answer the same commands byte for byte. Also: NewEpisodes
# appends, binary traffic round-trips, -ReplayTiming keeps the pace, ReplayMiss and RecordingInvalid.

BeforeDiscovery {
    $script:NoRedis = $null -eq (Get-Command redis-server -CommandType Application -ErrorAction SilentlyContinue) -or
        $null -eq (Get-Command redis-cli -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "pstcp-record-$PID-$(Get-Random)"
    $null = New-Item -ItemType Directory -Path $Dir

    function New-RecordingPath([string] $Name) { Join-Path $Dir "$Name-$(Get-Random).json" }

    # Runs redis-cli against 127.0.0.1:$Port with stdin from a file (or nothing); returns its stdout's bytes.
    function Invoke-RedisCli([int] $Port, [string] $Arguments, [string] $StdIn = '/dev/null') {
        $out = Join-Path $Dir "out-$(Get-Random).bin"
        & bash -c "timeout 20 redis-cli -h 127.0.0.1 -p $Port $Arguments < '$StdIn' > '$out' 2>&1"
        $bytes = [IO.File]::ReadAllBytes($out)
        Remove-Item -LiteralPath $out
        , $bytes
    }

    # The redis-cli calls of the test: one connection each; the second is a session of four commands.
    $script:Session = Join-Path $Dir 'session.txt'
    [IO.File]::WriteAllText($Session, "SET counter 10`nINCR counter`nINCR counter`nGET greeting`n")
    $script:Blob = Join-Path $Dir 'blob.bin'
    [IO.File]::WriteAllBytes($Blob, [byte[]](0..255 + 255..0))
    $script:Calls = @(
        @{ Arguments = 'SET greeting hello' }
        @{ Arguments = ''; StdIn = $Session }
        @{ Arguments = '-x SET blob'; StdIn = $Blob }
        @{ Arguments = 'GET blob' }
        @{ Arguments = 'INCR counter' }
    )
    function Invoke-Calls([int] $Port) {
        foreach ($call in $Calls) {
            $stdin = if ($call.StdIn) { $call.StdIn } else { '/dev/null' }
            , (Invoke-RedisCli $Port $call.Arguments $stdin)
        }
    }
}

AfterAll {
    Clear-PSTcpState
    Remove-Item -LiteralPath $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A redis-cli session recorded through the relay, then replayed without redis-server' -Skip:$NoRedis {
    BeforeAll {
        $redisPort = Get-FreeTcpPort
        $redis = Start-TestProgram redis-server @('--port', "$redisPort", '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no') -Port $redisPort
        $script:File = New-RecordingPath 'redis'
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $redisPort -RecordPath $File -NoQueue
        $script:Recorded = @(Invoke-Calls $relay.Port)
        # Every redis-cli has gone: its connection ended (and was written) before the relay stops.
        Wait-Until { (Get-TcpServer -Id $relay.Id).ConnectionCount -eq 0 } -Timeout 10
        $relay | Stop-TcpServer
        Stop-TestProgram $redis
        $script:DeadPort = $redisPort
    }
    AfterEach { Clear-PSTcpState }

    It 'got real answers while recording' {
        [Text.Encoding]::ASCII.GetString($Recorded[1]) | Should -Be "OK`n11`n12`nhello`n"
        [Text.Encoding]::ASCII.GetString($Recorded[4]) | Should -Be "13`n"
        # Non-tty redis-cli prints the raw value: the 512 bytes, then a newline.
        $Recorded[3].Length | Should -Be 513
        [Convert]::ToBase64String($Recorded[3][0..511]) | Should -Be ([Convert]::ToBase64String([IO.File]::ReadAllBytes($Blob)))
    }

    It 'wrote a file a person can read: one connection per call, text as text, the binary value as base64, and how each ended' {
        $json = Get-Content -LiteralPath $File -Raw
        $doc = $json | ConvertFrom-Json
        $doc.connections.Count | Should -Be 5
        $json | Should -BeLike '*"text": "`*3\r\n$3\r\nSET\r\n$8\r\ngreeting\r\n$5\r\nhello\r\n"*'
        $json | Should -BeLike '*"text": "+OK\r\n"*'
        ($doc.connections[2].messages | Where-Object { $_.from -eq 'Client' } | Select-Object -First 1).PSObject.Properties.Name | Should -Contain 'base64'
        foreach ($connection in $doc.connections) {
            $connection.end.by | Should -Be 'Client'
            $connection.end.how | Should -Be 'Close'
        }
    }

    It 'Start-TcpServer -ReplayPath answers the same commands byte for byte' {
        $replay = Start-TcpServer -Port 0 -ReplayPath $File -Framing Raw
        $replayed = @(Invoke-Calls $replay.Port)
        for ($i = 0; $i -lt $Calls.Count; $i++) {
            [Convert]::ToBase64String($replayed[$i]) | Should -Be ([Convert]::ToBase64String($Recorded[$i])) -Because "call $i ($($Calls[$i].Arguments))"
        }
        $replay.ErrorCount | Should -Be 0
    }

    It 'the relay in <Mode> mode replays the file without contacting the stopped target' -ForEach @(
        @{ Mode = 'Once' }, @{ Mode = 'None' }
    ) {
        $before = (Get-Item -LiteralPath $File).LastWriteTimeUtc
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $DeadPort -RecordPath $File -RecordMode $Mode -NoQueue
        $replayed = @(Invoke-Calls $relay.Port)
        for ($i = 0; $i -lt $Calls.Count; $i++) {
            [Convert]::ToBase64String($replayed[$i]) | Should -Be ([Convert]::ToBase64String($Recorded[$i])) -Because "call $i ($($Calls[$i].Arguments))"
        }
        $relay.ErrorCount | Should -Be 0
        $relay | Stop-TcpServer
        (Get-Item -LiteralPath $File).LastWriteTimeUtc | Should -Be $before
    }

    It 'a command the recording does not have is a ReplayMiss naming what was asked and what was expected' {
        $replay = Start-TcpServer -Port 0 -ReplayPath $File -Framing Raw
        $out = [Text.Encoding]::ASCII.GetString((Invoke-RedisCli $replay.Port 'SET greeting goodbye'))
        $out | Should -Not -BeLike '*OK*'
        Wait-Until { (Get-TcpServer -Id $replay.Id).ErrorCount -ge 1 } -Timeout 10
        $message = $replay.LastError.Message
        $message | Should -BeLike '*goodbye*'
        $message | Should -BeLike '*SET\r\n$8\r\ngreeting\r\n$5\r\nhello*'
        $replay.LastError.Kind | Should -Be 'ReplayMiss'
        $null = Receive-TcpMessage -Server $replay -Timeout 0.2 -ErrorAction SilentlyContinue -ErrorVariable failed
        @($failed | Where-Object FullyQualifiedErrorId -like 'ReplayMiss*').Count | Should -Be 1 -Because 'the next receive on the server shows the miss'
        $replay | Stop-TcpServer -WarningVariable warned -WarningAction SilentlyContinue
        "$warned" | Should -BeLike '*Replay miss*goodbye*'
    }
}

Describe 'NewEpisodes, binary traffic, timing and broken files' {
    AfterEach { Clear-PSTcpState }

    It 'NewEpisodes replays what the file has and records and appends the rest from the target' {
        $file = New-RecordingPath 'episodes'
        $target = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'A' = 'answer a'; 'B' = 'answer b' })
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.Port -RecordPath $file -RecordMode All -NoQueue
        (Invoke-TcpRequest 127.0.0.1 $relay.Port -Message 'A' -Count 1 -Timeout 5).Text | Should -Be 'answer a'
        $relay | Stop-TcpServer
        ((Get-Content -LiteralPath $file -Raw | ConvertFrom-Json).connections).Count | Should -Be 1
        $accepted = (Get-TcpServer -Id $target.Id).TotalConnections

        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.Port -RecordPath $file -RecordMode NewEpisodes -NoQueue
        (Invoke-TcpRequest 127.0.0.1 $relay.Port -Message 'A' -Count 1 -Timeout 5).Text | Should -Be 'answer a'
        (Get-TcpServer -Id $target.Id).TotalConnections | Should -Be $accepted -Because 'A is in the file: replayed, the target not contacted'
        (Invoke-TcpRequest 127.0.0.1 $relay.Port -Message 'B' -Count 1 -Timeout 5).Text | Should -Be 'answer b'
        (Get-TcpServer -Id $target.Id).TotalConnections | Should -Be ($accepted + 1)
        $relay | Stop-TcpServer
        $doc = Get-Content -LiteralPath $file -Raw | ConvertFrom-Json
        $doc.connections.Count | Should -Be 2
        $doc.connections[1].messages[0].text | Should -Be "B`n"
        $doc.connections[1].messages[1].text | Should -Be "answer b`n"
    }

    It 'all 256 byte values round-trip byte-exact through record and replay (Raw framing)' {
        $file = New-RecordingPath 'binary'
        $bytes = [byte[]](0..255)
        $reversed = [byte[]](255..0)
        $target = Start-TcpServer -Port 0 -Framing Raw -ScriptBlock { param($m) , [byte[]]($m.Data[($m.Data.Length - 1)..0]) }
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.Port -RecordPath $file -Framing Raw -NoQueue
        $client = New-RawClient $relay.Port
        Send-RawBytes $client $bytes
        $answer = Read-RawBytes $client 256 -Timeout 10
        [Convert]::ToBase64String($answer) | Should -Be ([Convert]::ToBase64String($reversed))
        Close-RawClient $client
        Wait-Until { Test-Path -LiteralPath $file } -Timeout 10
        $relay, $target | Stop-TcpServer
        $doc = Get-Content -LiteralPath $file -Raw | ConvertFrom-Json
        $doc.connections[0].messages[0].base64 | Should -Be ([Convert]::ToBase64String($bytes))

        $replay = Start-TcpServer -Port 0 -ReplayPath $file -Framing Raw
        $client = New-RawClient $replay.Port
        # Split differently from the recording: matching is on the byte stream.
        Send-RawBytes $client ([byte[]]$bytes[0..99])
        Send-RawBytes $client ([byte[]]$bytes[100..255])
        $replayed = Read-RawBytes $client 256 -Timeout 10
        [Convert]::ToBase64String($replayed) | Should -Be ([Convert]::ToBase64String($reversed))
        Close-RawClient $client
        $replay.ErrorCount | Should -Be 0
    }

    It '-ReplayTiming keeps the recorded pace; without it the answer comes at once' {
        $file = New-RecordingPath 'timing'
        Set-Content -LiteralPath $file -Value @'
{ "connections": [ { "messages": [
    { "from": "Client", "at": 10, "text": "PING\n" },
    { "from": "Target", "at": 1510, "text": "PONG\n" } ],
  "end": { "by": "Client", "how": "Close", "at": 1600 } } ] }
'@
        $paced = Start-TcpServer -Port 0 -ReplayPath $file -ReplayTiming
        $watch = [Diagnostics.Stopwatch]::StartNew()
        (Invoke-TcpRequest 127.0.0.1 $paced.Port -Message 'PING' -Count 1 -Timeout 10).Text | Should -Be 'PONG'
        $watch.Elapsed.TotalMilliseconds | Should -BeGreaterOrEqual 1450
        $watch.Elapsed.TotalMilliseconds | Should -BeLessThan 6000

        $fast = Start-TcpServer -Port 0 -ReplayPath $file
        $watch.Restart()
        (Invoke-TcpRequest 127.0.0.1 $fast.Port -Message 'PING' -Count 1 -Timeout 10).Text | Should -Be 'PONG'
        $watch.Elapsed.TotalMilliseconds | Should -BeLessThan 1450
    }

    It 'reproduces a recorded reset by the target, and a greeting when the target spoke first' {
        $file = New-RecordingPath 'reset'
        Set-Content -LiteralPath $file -Value @'
{ "connections": [ { "messages": [
    { "from": "Target", "at": 0, "text": "220 ready\r\n" },
    { "from": "Client", "at": 5, "text": "QUIT\r\n" } ],
  "end": { "by": "Target", "how": "Reset", "at": 6 } } ] }
'@
        $replay = Start-TcpServer -Port 0 -ReplayPath $file
        $client = New-RawClient $replay.Port
        [Text.Encoding]::ASCII.GetString((Read-RawBytes $client 11 -Timeout 10)) | Should -Be "220 ready`r`n"
        Send-RawBytes $client "QUIT`r`n"
        $reset = $false
        try { $null = Read-RawToEnd $client -Timeout 10 } catch { $reset = "$_" -like '*reset*' }
        if (-not $reset) {
            # The RST may come as a failed read or as a read of zero after it: the socket then reports it.
            $reset = -not $client.Connected -or $client.Poll(0, [Net.Sockets.SelectMode]::SelectError)
        }
        $reset | Should -BeTrue
        Close-RawClient $client
    }

    It 'a broken file is RecordingInvalid at start, naming the problem and its line: <Case>' -ForEach @(
        @{ Case = 'cut short'; Json = "{ `"connections`": [`n  { `"messages`": [ { `"from`": `"Client`", `"text`": `"x`" } ] }"; Like = '*line 3, column 1*ends inside an array*' }
        @{ Case = 'a bad side'; Json = "{ `"connections`": [`n { `"messages`": [`n { `"from`": `"Clint`", `"text`": `"x`" } ] } ] }"; Like = '*line 3*connection 1, message 1*"Clint" is not a side*' }
        @{ Case = 'bad base64'; Json = "{ `"connections`": [ { `"messages`": [ { `"from`": `"Target`", `"base64`": `"!!`" } ] } ] }"; Like = '*line 1*base64*' }
        @{ Case = 'no connections'; Json = '{ "version": 1 }'; Like = '*has no "connections"*' }
    ) {
        $file = New-RecordingPath 'broken'
        Set-Content -LiteralPath $file -Value $Json
        $err = $null
        try { $null = Start-TcpServer -Port 0 -ReplayPath $file } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -BeLike 'RecordingInvalid*'
        $err.Exception.Message | Should -BeLike $Like
        $err = $null
        try { $null = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort 9 -RecordPath $file -RecordMode None } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'RecordingInvalid*'
        @(Get-TcpServer).Count | Should -Be 0
    }

    It 'a missing file is RecordingInvalid for -ReplayPath and -RecordMode None' {
        $file = New-RecordingPath 'missing'
        { Start-TcpServer -Port 0 -ReplayPath $file } | Should -Throw -ErrorId 'RecordingInvalid*'
        { Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort 9 -RecordPath $file -RecordMode None } | Should -Throw -ErrorId 'RecordingInvalid*'
        { Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort 9 -RecordPath (Join-Path $Dir 'no-such-folder/x.json') } | Should -Throw -ErrorId 'RecordingInvalid*'
        @(Get-TcpServer).Count | Should -Be 0
    }
}

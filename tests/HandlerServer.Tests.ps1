# Handler servers (SPEC "Handler servers"): Start-TcpServer -ScriptBlock with -ArgumentList,
# $using:, -NewLine, reply-then-close and HandlerFailed; -Reply / -DefaultReply tables; order
# per connection and independence of connections on the long-lived handler runspaces.
# Peers are raw System.Net.Sockets clients.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $seconds10 = [TimeSpan]::FromSeconds(10)

    function Get-LiveServer { Get-TcpServer -Id $server.Id }

    # Reads a raw client until it has $Count bytes, as UTF-8 text.
    function Read-RawText([System.Net.Sockets.Socket] $Socket, [int] $Count, [object] $Timeout = 10) {
        ConvertFrom-Bytes (Read-RawBytes $Socket $Count -Timeout $Timeout)
    }

    # Sends lines and reads back exactly the expected answer text.
    function Test-Exchange([System.Net.Sockets.Socket] $Socket, [string] $Send, [string] $Expect) {
        Send-RawBytes $Socket $Send
        Read-RawText $Socket (ConvertTo-Bytes $Expect).Length
    }
}

Describe 'Start-TcpServer -ScriptBlock: the caller''s data' {
    BeforeEach { $client = $null; $server = $null }
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'passes -ArgumentList values after the message and the connection' {
        $server = Start-TcpServer -Port 0 -ArgumentList 'first', 2 -ScriptBlock {
            param($Message, $Connection, $First, $Second)
            "$($Message.Text) conn=$($Connection.Id -eq $Message.ConnectionId) $First $($Second * 10)"
        }
        $client = New-RawClient $server.Port
        Test-Exchange $client "x`n" "x conn=True first 20`n" | Should -BeExactly "x conn=True first 20`n"
    }

    It 'passes the argument objects themselves, shared by every handler call' {
        $seen = [System.Collections.Concurrent.ConcurrentQueue[string]]::new()
        $server = Start-TcpServer -Port 0 -ArgumentList $seen -ScriptBlock {
            param($Message, $Connection, $Seen)
            $Seen.Enqueue($Message.Text)
            "ok"
        }
        $client = New-RawClient $server.Port
        Test-Exchange $client "a`nb`n" "ok`nok`n" | Should -BeExactly "ok`nok`n"
        @($seen) | Should -BeExactly @('a', 'b')
    }

    It 'reads $using: variables as they were when the server started' {
        $answer = 42
        $names = @{ alpha = 'one' }
        $server = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message)
            $table = $using:names
            "answer=[$using:answer] $($table[$Message.Text]) ${using:answer}"
        }
        $answer = 43   # after the start: not seen
        $client = New-RawClient $server.Port
        Test-Exchange $client "alpha`n" "answer=[42] one 42`n" | Should -BeExactly "answer=[42] one 42`n"
    }

    It 'makes $Message also $_' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { "got $($_.Text)" }
        $client = New-RawClient $server.Port
        Test-Exchange $client "it`n" "got it`n" | Should -BeExactly "got it`n"
    }

    It 'fails the start with InvalidArgument on a $using: variable that does not exist, and starts nothing' {
        $before = @(Get-TcpServer).Count
        $err = $null
        try {
            Start-TcpServer -Port 0 -ScriptBlock { "x $using:noSuchVariableHere" }
        } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        $err.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        "$err" | Should -BeLike '*$using:noSuchVariableHere*noSuchVariableHere*'
        @(Get-TcpServer).Count | Should -Be $before
    }

    It 'fails the start on a bad $using: inside a -Reply scriptblock too' {
        { Start-TcpServer -Port 0 -Reply @{ '*' = { $using:alsoMissing } } } |
            Should -Throw -ErrorId 'InvalidArgument*'
    }
}

Describe 'Start-TcpServer -ScriptBlock: what is sent' {
    BeforeEach { $client = $null; $server = $null }
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'ends each output line with -NewLine "`r`n"' {
        $server = Start-TcpServer -Port 0 -NewLine "`r`n" -ScriptBlock { param($Message) '+PONG'; 'two' }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "PING`r`n"
        ConvertTo-Hex (Read-RawBytes $client 12) | Should -Be (ConvertTo-Hex (ConvertTo-Bytes "+PONG`r`ntwo`r`n"))
        (Read-RawAvailable $client -Window '200ms').Length | Should -Be 0
    }

    It 'ends output lines with LF by default' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { 'a' }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "x`r`n"
        ConvertTo-Hex (Read-RawBytes $client 2) | Should -Be '61-0A'
    }

    It 'sends a byte array as its bytes' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { , [byte[]](0x00, 0xFF, 0x41) }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "x`n"
        ConvertTo-Hex (Read-RawBytes $client 4) | Should -Be '00-FF-41-0A'
    }

    It 'frames output with the server''s framing: a length prefix with -Framing LengthPrefix' {
        $server = Start-TcpServer -Port 0 -Framing LengthPrefix -ScriptBlock { "re $($_.Text)"; , [byte[]](1, 2) }
        $client = New-RawClient $server.Port
        Send-RawBytes $client ([byte[]](0, 0, 0, 3) + (ConvertTo-Bytes 'abc'))
        ConvertTo-Hex (Read-RawBytes $client 16) | Should -Be (ConvertTo-Hex ([byte[]](0, 0, 0, 6) + (ConvertTo-Bytes 're abc') + [byte[]](0, 0, 0, 2, 1, 2)))
    }

    It 'frames -Reply answers with -Framing Delimiter' {
        $server = Start-TcpServer -Port 0 -Delimiter ';' -Reply @{ 'a*' = 'yes' } -DefaultReply 'no'
        $client = New-RawClient $server.Port
        Test-Exchange $client 'abc;zz;' 'yes;no;' | Should -BeExactly 'yes;no;'
    }

    It 'lets the handler reply, then close its connection: the reply arrives, then EOF' {
        $server = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message, $Connection)
            if ($Message.Text -ne 'quit') { return "hi $($Message.Text)" }
            'bye'
            $Connection | Disconnect-TcpEndpoint
        }
        $client = New-RawClient $server.Port
        Test-Exchange $client "hello`n" "hi hello`n" | Should -BeExactly "hi hello`n"
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        Send-RawBytes $client "quit`nnever handled`n"
        # Nothing for the line after the close: it was not handled.
        ConvertFrom-Bytes (Read-RawToEnd $client -Timeout 5) | Should -BeExactly "bye`n"
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 1.5 -Because 'the close happens as the handler returns, not after a linger or reset timeout'
        Wait-Until { (Get-LiveServer).ConnectionCount -eq 0 } -Because 'the server to close the connection'
        (Get-LiveServer).ErrorCount | Should -Be 0
    }
}

Describe 'Start-TcpServer -ScriptBlock: failures are visible and cost one message' {
    BeforeEach { $client = $null; $server = $null }
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'reports throw, exit and Write-Error as HandlerFailed and serves the next line' {
        $server = Start-TcpServer -Port 0 -ScriptBlock {
            param($Message)
            switch ($Message.Text) {
                'throw' { throw 'kaboom' }
                'exit' { exit 3 }
                'error' { Write-Error 'a written error'; 'still sent' }
                'cmdlet' { Get-Item -LiteralPath '/no/such/path/here' }
                default { "ok $_" }
            }
        }
        $job = $server | Receive-TcpMessage -AsJob
        $client = New-RawClient $server.Port
        Test-Exchange $client "throw`nexit`nerror`ncmdlet`nnext`n" "still sent`nok next`n" | Should -BeExactly "still sent`nok next`n"
        Test-Exchange $client "again`n" "ok again`n" | Should -BeExactly "ok again`n"
        Wait-Until { (Get-LiveServer).ErrorCount -ge 4 } -Because 'four handler failures'
        (Get-LiveServer).ErrorCount | Should -Be 4
        "$((Get-LiveServer).LastError.Kind)" | Should -Be 'HandlerFailed'
        (Get-LiveServer).ConnectionCount | Should -Be 1
        Wait-Until { $job.Error.Count -ge 4 } -Because 'the consumer job to get the four failures'
        $errors = @($job.Error)
        $errors.FullyQualifiedErrorId | ForEach-Object { $_ | Should -BeLike 'HandlerFailed*' }
        "$($errors[0])" | Should -BeLike '*kaboom*message 1 of connection*'
        "$($errors[1])" | Should -BeLike '*called exit 3*message 2*'
        "$($errors[2])" | Should -BeLike '*a written error*message 3*'
        "$($errors[3])" | Should -BeLike '*/no/such/path/here*message 4*'
        $job.State | Should -Be 'Running'
    }

    It 'tells a -Verbose consumer of each failure too' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) if ($Message.Text -eq 'bad') { throw 'kaboom' } else { 'fine' } }
        $job = $server | Receive-TcpMessage -AsJob -Verbose
        $client = New-RawClient $server.Port
        Test-Exchange $client "bad`ngood`n" "fine`n" | Should -BeExactly "fine`n"
        Wait-Until { @($job.Verbose | Where-Object Message -Like '*kaboom*').Count -ge 1 } -Because 'the failure in the verbose stream'
        @($job.Error).Count | Should -Be 1
    }
}

Describe 'Start-TcpServer -ScriptBlock: order and independence' {
    BeforeEach { $clients = @(); $server = $null }
    AfterEach { Close-RawClient $clients; Clear-PSTcpState }

    It 'keeps each connection''s answers in order while connections share the workers' {
        $server = Start-TcpServer -Port 0 -NoQueue -ThrottleLimit 3 -ScriptBlock { param($Message) "re $($Message.Text)" }
        $clients = @(1..4 | ForEach-Object { New-RawClient $server.Port })
        $expected = @{}
        foreach ($c in 0..3) {
            $expected[$c] = (1..300 | ForEach-Object { "re c$c-$_`n" }) -join ''
        }
        # Interleaved writes of a few lines each, so batches of all four connections mix.
        foreach ($chunk in 0..29) {
            foreach ($c in 0..3) {
                Send-RawBytes $clients[$c] ((1..10 | ForEach-Object { "c$c-$($chunk * 10 + $_)`n" }) -join '')
            }
        }
        foreach ($c in 0..3) {
            Read-RawText $clients[$c] (ConvertTo-Bytes $expected[$c]).Length -Timeout 30 | Should -BeExactly $expected[$c]
        }
    }

    It 'answers another connection while one connection''s handler is blocked (-ThrottleLimit 2)' {
        $release = [System.Threading.ManualResetEventSlim]::new($false)
        $server = Start-TcpServer -Port 0 -ThrottleLimit 2 -ArgumentList $release -ScriptBlock {
            param($Message, $Connection, $Release)
            if ($Message.Text -eq 'block') { $null = $Release.Wait([TimeSpan]::FromSeconds(20)) }
            "done $($Message.Text)"
        }
        $clients = @((New-RawClient $server.Port), (New-RawClient $server.Port))
        Send-RawBytes $clients[0] "block`nafter`n"
        Wait-Until { (Get-LiveServer).MessagesReceived -ge 2 } -Because 'the blocking line to be taken'
        Test-Exchange $clients[1] "free`n" "done free`n" | Should -BeExactly "done free`n"
        $clients[0].Available | Should -Be 0 -Because 'the blocked connection has not answered yet'
        $release.Set()
        Read-RawText $clients[0] 22 | Should -BeExactly "done block`ndone after`n"
    }
}

Describe 'Start-TcpServer -Reply' {
    BeforeEach { $client = $null; $server = $null }
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'answers by wildcard key, case-insensitively, first match wins, strings and lists' {
        $server = Start-TcpServer -Port 0 -Reply ([ordered]@{
            'PING'   = '+PONG'
            'GET a*' = 'first'
            'GET *'  = 'second'
            'LIST'   = 'one', 'two'
            'QUIET'  = $null
        })
        $client = New-RawClient $server.Port
        Test-Exchange $client "ping`nGET abc`nget zzz`nquiet`nlist`nunknown`nPING`n" "+PONG`nfirst`nsecond`none`ntwo`n+PONG`n" |
            Should -BeExactly "+PONG`nfirst`nsecond`none`ntwo`n+PONG`n"
        (Read-RawAvailable $client -Window '200ms').Length | Should -Be 0 -Because 'QUIET and an unmatched line get no answer'
        # Every line was still queued for consumers.
        @(Receive-TcpMessage -Server $server -Count 7 -Timeout $seconds10).Count | Should -Be 7
    }

    It 'answers what matched nothing with -DefaultReply' {
        $server = Start-TcpServer -Port 0 -NewLine "`r`n" -Reply @{ 'PING' = '+PONG' } -DefaultReply '-ERR unknown command'
        $client = New-RawClient $server.Port
        Test-Exchange $client "FLUSHALL`r`nPING`r`n" "-ERR unknown command`r`n+PONG`r`n" | Should -BeExactly "-ERR unknown command`r`n+PONG`r`n"
    }

    It 'calls a scriptblock value as a handler, with -ArgumentList and $using:, in order with fixed answers' {
        $prefix = 'val'
        $server = Start-TcpServer -Port 0 -ArgumentList 7 -Reply ([ordered]@{
            'GET *' = { param($Message, $Connection, $Seven) "$using:prefix $($Message.Text.Substring(4)) $Seven" }
            'PING'  = '+PONG'
        }) -DefaultReply { "default $($_.Text)" }
        $client = New-RawClient $server.Port
        Test-Exchange $client "PING`nGET k`nPING`nzz`n" "+PONG`nval k 7`n+PONG`ndefault zz`n" |
            Should -BeExactly "+PONG`nval k 7`n+PONG`ndefault zz`n"
    }

    It 'needs no handler runspace when every answer is a string' {
        # Runspaces of earlier tests' servers may still be closing: look for new ones only.
        $before = @(Get-Runspace).Id
        $server = Start-TcpServer -Port 0 -Reply @{ 'PING' = '+PONG' } -DefaultReply 'no'
        $client = New-RawClient $server.Port
        Test-Exchange $client "PING`nx`n" "+PONG`nno`n" | Should -BeExactly "+PONG`nno`n"
        @(Get-Runspace | Where-Object Id -notin $before) | Should -HaveCount 0
        $withScript = Start-TcpServer -Port 0 -Reply @{ 'PING' = { '+PONG' } }
        Wait-Until { @(Get-Runspace | Where-Object Id -notin $before).Count -eq 1 } -Because 'a scriptblock answer starts one handler runspace'
    }

    It 'reports a -Reply scriptblock that throws as HandlerFailed and serves the next line' {
        $server = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'boom' = { throw 'reply failed' }; '*' = 'ok' })
        $client = New-RawClient $server.Port
        Test-Exchange $client "boom`nnext`n" "ok`n" | Should -BeExactly "ok`n"
        Wait-Until { (Get-LiveServer).ErrorCount -eq 1 }
        "$((Get-LiveServer).LastError.Kind)" | Should -Be 'HandlerFailed'
        "$((Get-LiveServer).LastError.Message)" | Should -BeLike '*reply failed*'
    }

    It 'refuses a list that holds a scriptblock, with InvalidArgument' {
        { Start-TcpServer -Port 0 -Reply @{ 'x' = 'a', { 'b' } } } | Should -Throw -ErrorId 'InvalidArgument*'
    }
}

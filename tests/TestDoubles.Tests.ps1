# Test doubles (SPEC "Test doubles", issue 20): -Greeting, -Conversation, bytes out of handlers,
# New-TcpReply (delays that hold no worker, close, reset, sequences), Disconnect-TcpEndpoint
# -Reset, Suspend/Resume-TcpServer, handler failures and start-time warnings, Wait-TcpMessage
# and Should -HaveReceivedTcpMessage. Peers are raw sockets and real programs (python3).

BeforeDiscovery {
    $script:HasPython = [bool](Get-Command python3 -ErrorAction Ignore)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function Read-RawText([System.Net.Sockets.Socket] $Socket, [string] $Expect, [object] $Timeout = 10) {
        ConvertFrom-Bytes (Read-RawBytes $Socket (ConvertTo-Bytes $Expect).Length -Timeout $Timeout)
    }

    # A python3 client: connects, sends $Send, reads until EOF or an error; prints what it read
    # (as text) and how it ended: EOF, or the errno name (ECONNRESET).
    function Invoke-PythonPeer([int] $Port, [string] $Send = '', [int] $Timeout = 10) {
        $code = @'
import socket, sys, errno
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=float(sys.argv[3]))
if sys.argv[2]:
    s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
got = b""
end = "EOF"
try:
    while True:
        b = s.recv(65536)
        if not b: break
        got += b
except OSError as e:
    end = errno.errorcode.get(e.errno, str(e))
print(repr(got.decode("latin-1")))
print(end)
'@
        $out = & python3 -c $code $Port $Send $Timeout 2>&1
        [pscustomobject]@{ Received = "$($out[0])"; End = "$($out[-1])" }
    }
}

AfterAll { Clear-PSTcpState }

Describe '-Greeting' {
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'Start-TcpServer sends it to each connection before any reply' {
        $server = Start-TcpServer -Port 0 -NewLine "`r`n" -Greeting '220 ready', 'second line' -Reply @{ 'PING' = 'PONG' }
        foreach ($i in 1..2) {
            $client = New-RawClient $server.Port
            Send-RawBytes $client "PING`n"
            Read-RawText $client "220 ready`r`nsecond line`r`nPONG`r`n" | Should -BeExactly "220 ready`r`nsecond line`r`nPONG`r`n"
            Close-RawClient $client
        }
    }

    It 'Start-TcpEchoServer greets, then echoes' {
        $server = Start-TcpEchoServer -Port 0 -Greeting 'hello'
        $client = New-RawClient $server.Port
        Read-RawText $client "hello`n" | Should -BeExactly "hello`n"
        Send-RawBytes $client "abc`n"
        Read-RawText $client "abc`n" | Should -BeExactly "abc`n"
    }

    It 'is framed by the server''s framing' {
        $server = Start-TcpServer -Port 0 -Framing LengthPrefix -PrefixSize 2 -Greeting 'hi' -ScriptBlock { 'x' }
        $client = New-RawClient $server.Port
        (Read-RawBytes $client 4) | Should -Be ([byte[]](0, 2, 0x68, 0x69))
    }
}

Describe 'Bytes out of handlers are bytes' {
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'sends an unrolled [byte[]] as its bytes, not as numbers' {
        $server = Start-TcpServer -Port 0 -Framing Raw -ScriptBlock { [byte[]](0x20, 2, 0, 0) }
        $client = New-RawClient $server.Port
        Send-RawBytes $client 'x'
        (Read-RawBytes $client 4) | Should -Be ([byte[]](0x20, 2, 0, 0))
        Read-RawAvailable $client -Window '300ms' | Should -BeNullOrEmpty
    }

    It 'makes consecutive [byte] outputs of one call one message, a string after them another' {
        $server = Start-TcpServer -Port 0 -Framing LengthPrefix -PrefixSize 1 -ScriptBlock { [byte[]](1, 2, 3); 'ab'; , [byte[]](9) }
        $client = New-RawClient $server.Port
        Send-RawBytes $client ([byte[]](1, 0x41))
        (Read-RawBytes $client 9) | Should -Be ([byte[]](3, 1, 2, 3, 2, 0x61, 0x62, 1, 9))
    }

    It 'answers 200 pipelined binary requests with 200 replies (a LengthPrefix fake)' {
        # Request: 2-byte length, then [op, id]; reply: [0x40, id] (a PUBACK-like acknowledgement).
        $server = Start-TcpServer -Port 0 -Framing LengthPrefix -PrefixSize 2 -ScriptBlock {
            param($Message)
            [byte[]](0x40, $Message.Data[1])
        }
        $client = New-RawClient $server.Port
        $requests = [System.IO.MemoryStream]::new()
        foreach ($i in 0..199) { $requests.Write([byte[]](0, 2, 0x30, ($i % 256)), 0, 4) }
        Send-RawBytes $client $requests.ToArray()
        $replies = Read-RawBytes $client (200 * 4) -Timeout 30
        $expected = [System.IO.MemoryStream]::new()
        foreach ($i in 0..199) { $expected.Write([byte[]](0, 2, 0x40, ($i % 256)), 0, 4) }
        $replies | Should -Be $expected.ToArray()
        Wait-Until { (Get-TcpServer -Id $server.Id).MessagesReceived -eq 200 }
    }
}

Describe 'New-TcpReply' {
    AfterEach { foreach ($c in @($clients)) { Close-RawClient $c }; Close-RawClient $client; Clear-PSTcpState }

    It 'describes the action' {
        $reply = New-TcpReply 'a', ([byte[]](1, 2)) -Delay 0.25 -Close
        $reply | Should -BeOfType PSTcp.TcpReply
        $reply.Message.Count | Should -Be 2
        $reply.Delay | Should -Be ([TimeSpan]::FromMilliseconds(250))
        $reply.Close | Should -BeTrue
        { New-TcpReply -Close -Reset } | Should -Throw -ErrorId 'InvalidArgument*'
    }

    It 'answers four concurrent 1 s delayed requests in about 1 s, not 4' {
        $server = Start-TcpServer -Port 0 -ThrottleLimit 1 -Reply @{ 'PING' = (New-TcpReply 'PONG' -Delay 1) }
        $clients = @(1..4 | ForEach-Object { New-RawClient $server.Port })
        $clock = [Diagnostics.Stopwatch]::StartNew()
        foreach ($c in $clients) { Send-RawBytes $c "PING`n" }
        foreach ($c in $clients) { Read-RawText $c "PONG`n" | Should -BeExactly "PONG`n" }
        $clock.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 2.5 -Because 'the delays run side by side, holding no worker'
    }

    It 'delays a scriptblock handler''s reply without holding its only worker' {
        $server = Start-TcpServer -Port 0 -ThrottleLimit 1 -ScriptBlock { param($m) New-TcpReply "late $($m.Text)" -Delay 1 }
        $clients = @(1..3 | ForEach-Object { New-RawClient $server.Port })
        $clock = [Diagnostics.Stopwatch]::StartNew()
        foreach ($c in $clients) { Send-RawBytes $c "x`n" }
        foreach ($c in $clients) { Read-RawText $c "late x`n" | Should -BeExactly "late x`n" }
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 2.5
    }

    It 'keeps the order on a connection: a delayed reply delays the next' {
        $server = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'slow' = (New-TcpReply 'S' -Delay 0.5); 'fast' = 'F' })
        $client = New-RawClient $server.Port
        Send-RawBytes $client "slow`nfast`n"
        Read-RawText $client "S`nF`n" | Should -BeExactly "S`nF`n"
    }

    It 'answers repeated matches in turn, the last repeating, each connection from the first' {
        $server = Start-TcpServer -Port 0 -Reply @{ 'GET*' = (New-TcpReply 'one'), (New-TcpReply 'two') }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "GET`nGET`nGET`n"
        Read-RawText $client "one`ntwo`ntwo`n" | Should -BeExactly "one`ntwo`ntwo`n"
        $second = New-RawClient $server.Port
        try {
            Send-RawBytes $second "GET`n"
            Read-RawText $second "one`n" | Should -BeExactly "one`n"
        }
        finally { Close-RawClient $second }
    }

    It 'closes gracefully after the reply with -Close, answering nothing after it' {
        $server = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'BYE' = (New-TcpReply 'bye' -Close); '*' = 'more' })
        $client = New-RawClient $server.Port
        Send-RawBytes $client "BYE`nafter`n"
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "bye`n"
    }

    It 'sends a partial reply with -Raw, then nothing with -NoReply' {
        $server = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'part' = (New-TcpReply 'HTTP/1.1 200' -Raw -Close); 'quiet' = (New-TcpReply -NoReply) })
        $client = New-RawClient $server.Port
        Send-RawBytes $client "quiet`n"
        Read-RawAvailable $client -Window '300ms' | Should -BeNullOrEmpty
        Send-RawBytes $client "part`n"
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly 'HTTP/1.1 200'
    }

    It 'resets with -Reset: a python client sees ECONNRESET, and the request is still queued' -Skip:(-not $HasPython) {
        $server = Start-TcpServer -Port 0 -Reply @{ 'RST' = (New-TcpReply 'going' -Reset) }
        $r = Invoke-PythonPeer $server.Port 'RST\n'
        $r.End | Should -Be 'ECONNRESET'
        (Receive-TcpMessage -Server $server -Count 1 -Timeout 5).Text | Should -Be 'RST'
    }
}

Describe 'Disconnect-TcpEndpoint -Reset' {
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'resets from inside a handler: ECONNRESET at the peer' -Skip:(-not $HasPython) {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($m, $Connection) $Connection | Disconnect-TcpEndpoint -Reset }
        (Invoke-PythonPeer $server.Port 'x\n').End | Should -Be 'ECONNRESET'
    }

    It 'resets from inside a conversation' -Skip:(-not $HasPython) {
        $server = Start-TcpServer -Port 0 -Conversation { param($Connection) $null = Receive-TcpMessage $Connection -Count 1 -Timeout 10; $Connection | Disconnect-TcpEndpoint -Reset }
        (Invoke-PythonPeer $server.Port 'x\n').End | Should -Be 'ECONNRESET'
    }

    It 'resets a client connection' {
        $listener = New-RawListener
        try {
            $connection = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port
            $client = Receive-RawConnection $listener
            $connection | Disconnect-TcpEndpoint -Reset
            $buffer = [byte[]]::new(16)
            $client.ReceiveTimeout = 5000
            { $null = $client.Receive($buffer) } | Should -Throw '*reset*'
        }
        finally { $listener.Stop() }
    }
}

Describe 'Suspend-TcpServer and Resume-TcpServer' {
    AfterEach { Close-RawClient $client, $early; Clear-PSTcpState }

    It 'refuses new connections, keeps the port and the open connections, then resumes' {
        $server = Start-TcpEchoServer -Port 0
        $early = New-RawClient $server.Port
        Send-RawBytes $early "one`n"
        Read-RawText $early "one`n" | Should -BeExactly "one`n"
        $server | Suspend-TcpServer
        (Get-TcpServer -Id $server.Id).State | Should -Be 'Suspended'
        Test-PortBindable $server.Port | Should -BeFalse -Because 'the port stays the server''s'
        # The connect itself may already see the reset; if not, the first read does.
        $refused = try { $client = New-RawClient $server.Port; Send-RawBytes $client "refused`n"; Test-RawClosed $client -Timeout 5 } catch { $true }
        $refused | Should -BeTrue
        Close-RawClient $client
        (Get-TcpServer -Id $server.Id).ConnectionsRefused | Should -BeGreaterOrEqual 1
        Send-RawBytes $early "two`n"
        Read-RawText $early "two`n" | Should -BeExactly "two`n"
        Resume-TcpServer -Id $server.Id
        (Get-TcpServer -Id $server.Id).State | Should -Be 'Running'
        $client = New-RawClient $server.Port
        Send-RawBytes $client "three`n"
        Read-RawText $client "three`n" | Should -BeExactly "three`n"
    }

    It 'with -Mode Timeout leaves connects unanswered once the backlog is full, and serves them after resuming' {
        $server = Start-TcpEchoServer -Port 0
        Suspend-TcpServer -Server $server -Mode Timeout
        $sockets = [System.Collections.Generic.List[object]]::new()
        try {
            $timedOut = $false
            for ($i = 0; $i -lt 8 -and -not $timedOut; $i++) {
                $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
                $sockets.Add($s)
                $timedOut = -not $s.ConnectAsync([System.Net.IPAddress]::Loopback, $server.Port).Wait(700)
            }
            $timedOut | Should -BeTrue -Because 'a suspended server in Timeout mode lets connects time out'
            $server | Resume-TcpServer
            $client = New-RawClient $server.Port
            Send-RawBytes $client "back`n"
            Read-RawText $client "back`n" | Should -BeExactly "back`n"
        }
        finally { foreach ($s in $sockets) { $s.Dispose() } }
    }

    It 'reports a server that is not running' {
        $server = Start-TcpEchoServer -Port 0
        $server | Stop-TcpServer
        $server | Suspend-TcpServer -ErrorAction SilentlyContinue -ErrorVariable failed
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'InvalidArgument*'
    }
}

Describe 'Start-TcpServer -Conversation' {
    AfterEach { foreach ($c in @($clients)) { Close-RawClient $c }; Close-RawClient $client; Clear-PSTcpState }

    It 'talks first, reads its own messages in order, and closes when it returns' {
        $server = Start-TcpServer -Port 0 -ArgumentList 'arg' -Conversation {
            param($Connection, $Extra)
            "hello $Extra"
            $two = Receive-TcpMessage -Connection $Connection -Count 2 -Timeout 10
            "got $($two.Text -join '+')"
            Send-TcpLine -Connection $Connection -Line 'sent directly'
            $until = Receive-TcpMessage -Connection $Connection -Until '^end$' -Timeout 10
            "until $($until.Count)"
        }
        $client = New-RawClient $server.Port
        Read-RawText $client "hello arg`n" | Should -BeExactly "hello arg`n"
        Send-RawBytes $client "a`nb`nc`nd`nend`n"
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly "got a+b`nsent directly`nuntil 3`n"
        $queued = Receive-TcpMessage -Server $server -Count 5 -Timeout 5
        $queued.Text -join ',' | Should -Be 'a,b,c,d,end'
    }

    It 'reads a Raw stream with -ByteCount and -Until without re-delivering bytes' {
        $server = Start-TcpServer -Port 0 -Framing Raw -Conversation {
            param($Connection)
            $head = Receive-TcpMessage -Connection $Connection -ByteCount 3 -Timeout 10
            $rest = Receive-TcpMessage -Connection $Connection -Until ';' -Timeout 10
            , [byte[]]($head.Data + [byte]0x7C + $rest.Data)
        }
        $client = New-RawClient $server.Port
        Send-RawBytes $client 'abcdef;'
        ConvertFrom-Bytes (Read-RawToEnd $client) | Should -BeExactly 'abc|def;'
    }

    It 'runs sleeping conversations side by side' {
        $server = Start-TcpServer -Port 0 -Conversation { param($Connection) 'hi'; Start-Sleep 10 }
        $clients = @(1..5 | ForEach-Object { New-RawClient $server.Port })
        foreach ($c in $clients) { Read-RawText $c "hi`n" -Timeout 8 | Should -BeExactly "hi`n" }
    }

    It 'makes connections beyond -ThrottleLimit wait for a free slot' {
        $server = Start-TcpServer -Port 0 -ThrottleLimit 1 -Conversation {
            param($Connection)
            'hi'
            $null = Receive-TcpMessage -Connection $Connection -Count 1 -Timeout 10
        }
        $client = New-RawClient $server.Port
        Read-RawText $client "hi`n" | Should -BeExactly "hi`n"
        $clients = @(New-RawClient $server.Port)
        Read-RawAvailable $clients[0] -Window '500ms' | Should -BeNullOrEmpty -Because 'the only slot is taken'
        Send-RawBytes $client "done`n"
        Read-RawText $clients[0] "hi`n" | Should -BeExactly "hi`n"
    }

    It 'fakes SMTP for python''s smtplib in ten lines' -Skip:(-not $HasPython) {
        $smtp = Start-TcpServer -Port 0 -NewLine "`r`n" -Conversation {
            param($Connection)
            '220 fake.test ESMTP'
            while ($line = Receive-TcpMessage -Connection $Connection -Count 1 -Timeout 10) {
                switch -Wildcard ($line.Text) {
                    'DATA' { '354 go ahead'; $null = Receive-TcpMessage -Connection $Connection -Until '^\.\r?$' -Timeout 10; '250 queued' }
                    'QUIT' { '221 bye'; return }
                    default { '250 fake.test' }
                }
            }
        }
        $code = 'import smtplib,sys; s=smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10); print(s.sendmail("a@x.test", ["b@y.test"], "Subject: hi\r\n\r\nbody line\r\n")); s.quit(); print("sent")'
        $out = & python3 -c $code $smtp.Port 2>&1
        $out | Should -Contain 'sent'
        $smtp | Should -HaveReceivedTcpMessage 'RCPT TO:<b@y.test>*' -Timeout 5
        $smtp | Should -HaveReceivedTcpMessage 'body line' -Timeout 5
    }

    It 'reports a failing conversation with its line at the next receive' {
        $server = Start-TcpServer -Port 0 -Conversation { param($Connection)
            Get-NoSuchThingForPSTcp }
        $client = New-RawClient $server.Port
        Test-RawClosed $client -Timeout 10 | Should -BeTrue
        Wait-Until { (Get-TcpServer -Id $server.Id).ErrorCount -ge 1 }
        $null = Receive-TcpMessage -Server $server -Timeout 0.2 -ErrorAction SilentlyContinue -ErrorVariable failed
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'HandlerFailed*'
        $failed[0].Exception.Message | Should -BeLike "*TestDoubles.Tests.ps1:*Get-NoSuchThingForPSTcp*"
    }
}

Describe 'Handler failures and start-time warnings' {
    AfterEach { Close-RawClient $client; Clear-PSTcpState }

    It 'shows a handler failure, with the script position, at the next Receive-TcpMessage and at Stop-TcpServer' {
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($m)
            Invoke-HelperOfTheTestFile $m }
        $client = New-RawClient $server.Port
        Send-RawBytes $client "x`n"
        Wait-Until { (Get-TcpServer -Id $server.Id).ErrorCount -ge 1 }
        $messages = Receive-TcpMessage -Server $server -Count 1 -Timeout 5 -ErrorAction SilentlyContinue -ErrorVariable failed
        $messages.Text | Should -Be 'x'
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'HandlerFailed*'
        $failed[0].Exception.Message | Should -BeLike '*TestDoubles.Tests.ps1:*Invoke-HelperOfTheTestFile*'
        $server | Stop-TcpServer -WarningVariable warned -WarningAction SilentlyContinue
        "$warned" | Should -BeLike '*failed 1 time*Invoke-HelperOfTheTestFile*'
    }

    It 'warns about a caller variable read without $using:' {
        $greeting = 'hello'
        $server = Start-TcpServer -Port 0 -ScriptBlock { "$greeting $($using:greeting)" } -WarningVariable warned -WarningAction SilentlyContinue
        "$warned" | Should -BeLike '*$greeting*$using:greeting*'
        @($warned).Count | Should -Be 1
    }

    It 'does not warn about parameters, assigned or $using: variables' {
        $table = @{}
        $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) $x = 1; $t = $using:table; "$x $Message $t $_" } -WarningVariable warned -WarningAction SilentlyContinue
        $warned | Should -BeNullOrEmpty
    }

    It 'warns about unordered -Reply keys that overlap, not ordered ones' {
        $null = Start-TcpServer -Port 0 -Reply @{ 'G*' = 'any'; 'GET color' = 'red' } -WarningVariable warned -WarningAction SilentlyContinue
        "$warned" | Should -BeLike "*'G`**"
        "$warned" | Should -BeLike "*'GET color'*ordered*"
        $null = Start-TcpServer -Port 0 -Reply ([ordered]@{ 'GET color' = 'red'; 'G*' = 'any' }) -WarningVariable quiet -WarningAction SilentlyContinue
        $quiet | Should -BeNullOrEmpty
    }
}

Describe 'Wait-TcpMessage and Should -HaveReceivedTcpMessage' {
    AfterEach { Clear-PSTcpState }

    It 'waits for matching messages, and keeps the others for a later wait' {
        $fake = Start-TcpEchoServer -Port 0
        Send-TcpLine -HostName 127.0.0.1 -Port $fake.Port -Line 'HELO a', 'MAIL b', 'QUIT'
        (Wait-TcpMessage $fake -Match 'QUIT' -Timeout 5).Text | Should -Be 'QUIT'
        (Wait-TcpMessage $fake -Match 'HELO*' -Timeout 1).Text | Should -Be 'HELO a'
        $fake | Should -HaveReceivedTcpMessage 'mail *' -Timeout 1
    }

    It 'fails with ReceiveTimeout showing expected beside received' {
        $fake = Start-TcpEchoServer -Port 0
        Send-TcpLine -HostName 127.0.0.1 -Port $fake.Port -Line 'EHLO x'
        $clock = [Diagnostics.Stopwatch]::StartNew()
        $null = Wait-TcpMessage -Server $fake -Match 'HELO*' -Timeout 1 -ErrorAction SilentlyContinue -ErrorVariable failed
        $clock.Elapsed.TotalSeconds | Should -BeLessThan 5
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout*'
        $failed[0].Exception.Message | Should -BeLike "*'HELO*'*EHLO x*"
    }

    It 'is a Should operator whose failure message lists what arrived' {
        $fake = Start-TcpEchoServer -Port 0
        Send-TcpLine -HostName 127.0.0.1 -Port $fake.Port -Line 'EHLO x'
        { $fake | Should -HaveReceivedTcpMessage 'HELO*' -Timeout 1 } | Should -Throw "*Expected 1 message(s) like 'HELO*'*EHLO x*"
        $fake | Should -Not -HaveReceivedTcpMessage 'QUIT' -Timeout 0.3
        Register-TcpShouldOperator
        $fake | Should -HaveReceivedTcpMessage 'EHLO*' -Timeout 1
    }
}

Describe 'about_PSTcpTesting examples' {
    BeforeDiscovery {
        $about = Get-Content "$PSScriptRoot/../module/help/about_PSTcpTesting.md" -Raw
        $script:AboutTests = @([regex]::Matches($about, '(?s)```pwsh\r?\n(.*?)```') | ForEach-Object { $_.Groups[1].Value } |
                Where-Object { $_ -match '\bDescribe\b' } | ForEach-Object { @{ Code = $_; Title = ([regex]::Match($_, "Describe '([^']+)'").Groups[1].Value) } })
    }

    It 'runs the Pester example "<Title>" and it passes' -ForEach $AboutTests {
        $root = (Resolve-Path "$PSScriptRoot/..").Path
        $script = Join-Path $TestDrive "about-$([guid]::NewGuid().ToString('n')).ps1"
        $pester = Join-Path $root 'out/packages/pester/5.7.1/tools/Pester.psd1'
        Set-Content -LiteralPath $script -Value @"
`$ErrorActionPreference = 'Stop'
Import-Module '$pester'
Import-Module '$root/out/PSTcp/PSTcp.psd1'
`$block = {
$Code
}
`$r = Invoke-Pester -Container (New-PesterContainer -ScriptBlock `$block) -PassThru -Output Minimal
if (`$r.FailedCount -gt 0 -or `$r.PassedCount -lt 1) { exit 1 }
exit 0
"@
        $r = Invoke-ChildPwsh -ArgumentList '-File', $script -Timeout 90
        $because = "the example failed:`n$($r.StdOut)`n$($r.StdErr)"
        $r.TimedOut | Should -BeFalse -Because $because
        $r.ExitCode | Should -Be 0 -Because $because
    }
}

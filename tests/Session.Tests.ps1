# Enter-TcpSession: an ncat-like session. Standard input matters here, so most cases run the
# session in a child pwsh whose standard input is a pipe this test writes to line by line and
# whose output it watches as it comes, always with bounded waits.

BeforeDiscovery {
    # A terminal for the child: util-linux script on a pseudo-terminal (not on Windows).
    $noTerminal = $IsWindows -or $null -eq (Get-Command script -CommandType Application -ErrorAction Ignore)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").ProviderPath

    Import-Module "$PSScriptRoot/ChildProcess.psm1" -Force

    function Get-Refusal([scriptblock] $Run) {
        $ErrorActionPreference = 'Stop'
        try { $null = & $Run; $null } catch { $_ }
    }

    function Start-SessionChild([string] $Code, [switch] $Terminal) {
        Start-ChildPwsh -Terminal:$Terminal -Code "`$ErrorActionPreference = 'Stop'`nImport-Module '$($ModulePath -replace "'", "''")'`n$Code"
    }
}

Describe 'Enter-TcpSession' {
    AfterEach {
        Stop-ChildPwsh $child
        $child = $null
        Clear-PSTcpState
    }

    Describe 'Enter-TcpSession with redirected standard input' {
        It 'sends each line as it is read, prints the echoes, and at the end of input closes the connection' {
            $server = Start-TcpEchoServer -Port 0
            $child = Start-SessionChild "Enter-TcpSession 127.0.0.1 $($server.Port) -Verbose"
            $child.Input.WriteLine('alpha')
            # The echo of the first line comes back while standard input is still open.
            Wait-ChildLine $child '^alpha$' | Should -Be 'alpha'
            $server.ConnectionCount | Should -Be 1
            $child.Input.WriteLine('beta')
            $child.Input.Close()
            $result = Wait-ChildExit $child
            $result.Exited | Should -BeTrue
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            $result.Lines | Should -Contain 'beta'
            # End of input half-closes; the echo server answers and closes, which ends the session.
            ($result.Lines -match 'ended \(the peer closed after the end of input\): 2 line\(s\) sent, 2 received') | Should -Not -BeNullOrEmpty
            Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
            $server.MessagesReceived | Should -Be 2
        }

        It 'ends when the peer closes, with standard input still open' {
            $listener = New-RawListener
            try {
                $child = Start-SessionChild "Enter-TcpSession 127.0.0.1 $($listener.LocalEndpoint.Port); 'session over'"
                $peer = Receive-RawConnection $listener
                $child.Input.WriteLine('hi')
                ConvertFrom-Bytes (Read-RawBytes $peer 3) | Should -Be "hi`n"
                Send-RawBytes $peer "goodbye`nlast words without a newline"
                $peer.Close()
                Wait-ChildLine $child '^session over$' | Out-Null
                $result = Wait-ChildExit $child
                $result.ExitCode | Should -Be 0 -Because $result.Errors
                $result.Lines | Should -Be 'goodbye', 'last words without a newline', 'session over'
            } finally {
                $listener.Stop()
            }
        }

        It 'with -Listen takes one client, talks both ways, turns away a second one and stops listening' {
            $child = Start-SessionChild "Enter-TcpSession -Listen -Port 0 -Verbose"
            $port = [int]([regex]::Match((Wait-ChildLine $child 'Listening on 127\.0\.0\.1:\d+'), ':(\d+);').Groups[1].Value)
            $client = New-RawClient $port
            try {
                Wait-ChildLine $child 'Client connected from' | Out-Null
                Send-RawBytes $client "from the client`n"
                Wait-ChildLine $child '^from the client$' | Should -Be 'from the client'
                $child.Input.WriteLine('from the session')
                ConvertFrom-Bytes (Read-RawBytes $client 17) | Should -Be "from the session`n"
                # One client only: another one is closed at once, and what it sends is never printed.
                $second = New-RawClient $port
                try {
                    try { Send-RawBytes $second "intruder`n" } catch { }
                    Test-RawClosed $second -Timeout 5 | Should -BeTrue
                } finally { Close-RawClient $second }
                $client.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
                $result = Wait-ChildExit $child
                $result.ExitCode | Should -Be 0 -Because $result.Errors
                $result.Lines | Should -Not -Contain 'intruder'
                Test-PortBindable $port | Should -BeTrue
            } finally {
                Close-RawClient $client
            }
        }

        It "shows the peer's control characters escaped (^[ for ESC, ^G for BEL), so none reaches the terminal" {
            $listener = New-RawListener
            try {
                $child = Start-SessionChild "Enter-TcpSession 127.0.0.1 $($listener.LocalEndpoint.Port); 'session over'"
                $peer = Receive-RawConnection $listener
                # A title, a colour, a bell, a CR in mid-line, a C1 CSI, DEL, and a tab that stays.
                $bytes = [Text.Encoding]::UTF8.GetBytes("$([char]27)]0;pwned$([char]7)$([char]27)[31mred$([char]27)[0m`tok$([char]13)x$([char]0x9b)2J$([char]0x7f)`n")
                Send-RawBytes $peer $bytes
                $line = Wait-ChildLine $child 'pwned'
                $line | Should -BeExactly "^[]0;pwned^G^[[31mred^[[0m`tok^MxM-^[2J^?"
                $peer.Close()
                $result = Wait-ChildExit $child
                $result.ExitCode | Should -Be 0 -Because $result.Errors
                foreach ($l in $result.Lines) { $l | Should -Not -Match '[\x00-\x08\x0a-\x1f\x7f-\x9f]' }
            } finally {
                $listener.Stop()
            }
        }

        It 'with -RawOutput passes them through as they are' {
            $listener = New-RawListener
            try {
                $child = Start-SessionChild "Enter-TcpSession 127.0.0.1 $($listener.LocalEndpoint.Port) -RawOutput"
                $peer = Receive-RawConnection $listener
                Send-RawBytes $peer "ring$([char]7)bell`n"
                $line = Wait-ChildLine $child 'ring'
                $line | Should -BeExactly "ring$([char]7)bell"
                $peer.Close()
                $null = Wait-ChildExit $child
            } finally {
                $listener.Stop()
            }
        }

        It 'ends at once on empty input with a -Connection it was given, and leaves that connection open' {
            $server = Start-TcpEchoServer -Port 0
            $code = "`$c = Connect-TcpEndpoint 127.0.0.1 $($server.Port)`nEnter-TcpSession -Connection `$c`n'state ' + `$c.State"
            $child = Start-SessionChild $code
            $child.Input.Close()
            $result = Wait-ChildExit $child
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            $result.Lines | Should -Contain 'state Open'
        }
    }

    Describe 'Enter-TcpSession in a terminal' -Skip:$noTerminal {
        BeforeEach {
            $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) "re: $($Message.Text)" }
            $code = "'tty ' + -not [Console]::IsInputRedirected`nEnter-TcpSession 127.0.0.1 $($server.Port)`n'after the session'"
        }

        It 'sends typed lines (Backspace edits), prints answers as they arrive, and ends on Ctrl+D' {
            $child = Start-SessionChild $code -Terminal
            Wait-ChildLine $child 'tty True' | Out-Null
            Wait-ChildLine $child 'Type lines to send; Ctrl\+D' | Out-Null
            $child.Input.Write("helx`blo`r")
            Wait-ChildLine $child 're: hello' | Out-Null
            # Still typing: the session keeps reading until Ctrl+D on an empty line.
            $child.Input.Write("again`r")
            Wait-ChildLine $child 're: again' | Out-Null
            $child.Input.Write([string][char]4)
            Wait-ChildLine $child 'after the session' | Out-Null
            $result = Wait-ChildExit $child
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
            $server.MessagesReceived | Should -Be 2
        }

        It 'edits typed lines: Backspace, Left/Right, Home/End, Delete, and Up/Down recall earlier lines' {
            $child = Start-SessionChild $code -Terminal
            Wait-ChildLine $child 'Type lines to send; Ctrl\+D' | Out-Null
            $esc = [char]27
            $left = "$esc[D"; $right = "$esc[C"; $up = "$esc[A"; $down = "$esc[B"; $home_ = "$esc[H"; $end = "$esc[F"; $delete = "$esc[3~"
            # The issue's keys: typo, two Backspaces, ed, two Left arrows, X: "tyXed".
            $child.Input.Write("typo$([char]0x7f)$([char]0x7f)ed$left${left}X`r")
            Wait-ChildLine $child 're: tyXed' | Out-Null
            # Home, End and Delete: "bc" -> Home "a" -> "abc" -> End "d" -> "abcd" -> Home Right Delete -> "acd".
            $child.Input.Write("bc${home_}a${end}d$home_$right$delete`r")
            Wait-ChildLine $child 're: acd' | Out-Null
            # Up recalls the last line sent, Up again the one before; Down comes back.
            $child.Input.Write("$up$up$up$down`r")
            Wait-ChildLine $child 're: acd' | Out-Null
            $child.Input.Write("${up}!`r")
            Wait-ChildLine $child 're: acd!' | Out-Null
            $child.Input.Write([string][char]4)
            Wait-ChildLine $child 'after the session' | Out-Null
            $result = Wait-ChildExit $child
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            $received = @(Receive-TcpMessage -Server $server -Timeout 5 -Count 4 | ForEach-Object Text)
            $received | Should -Be 'tyXed', 'acd', 'acd', 'acd!'
        }

        It 'is aborted by Ctrl+C while it waits, and closes its connection' {
            $child = Start-SessionChild $code -Terminal
            Wait-ChildLine $child 'Type lines to send; Ctrl\+D' | Out-Null
            Wait-Until { $server.ConnectionCount -eq 1 } -Timeout 10
            $child.Input.Write([string][char]3)
            $result = Wait-ChildExit $child
            $result.Exited | Should -BeTrue
            $result.Lines -match 'after the session' | Should -BeNullOrEmpty
            Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
        }
    }

    Describe 'Enter-TcpSession with piped input' {
        It 'sends piped lines and prints the answers, in a child pwsh' {
            $server = Start-TcpServer -Port 0 -ScriptBlock { param($Message) "re: $($Message.Text)" }
            $child = Start-SessionChild "'p1', 'p2' | Enter-TcpSession 127.0.0.1 $($server.Port); 'done'"
            $result = Wait-ChildExit $child
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            $result.Lines | Should -Be 're: p1', 're: p2', 'done'
            Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
        }

        It 'writes TcpMessage objects with -PassThru and leaves no connection behind' {
            $server = Start-TcpEchoServer -Port 0
            $replies = @('one', '', 'three' | Enter-TcpSession 127.0.0.1 $server.Port -PassThru)
            $replies.Text | Should -Be 'one', '', 'three'
            $replies[0] | Should -BeOfType ([PSTcp.TcpMessage])
            $replies.Sequence | Should -Be 1, 2, 3
            Wait-Until { $server.ConnectionCount -eq 0 } -Timeout 10
            Get-TcpConnection | Should -BeNullOrEmpty
        }

        It '-Hex prints a binary answer as hexdump -C does, and makes the session Raw' {
            $server = Start-TcpServer -Port 0 -Framing Raw -ScriptBlock { ,[byte[]](0..20) }
            $child = Start-SessionChild "'hello' | Enter-TcpSession 127.0.0.1 $($server.Port) -Hex; 'done'"
            $result = Wait-ChildExit $child
            $result.ExitCode | Should -Be 0 -Because $result.Errors
            $result.Lines | Should -Be '00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|',
                ('00000010  10 11 12 13 14' + (' ' * 36) + '|.....|'), 'done'
            # Raw: the session sent 'hello' and its LF as one read, which the handler answered once.
            $server.MessagesReceived | Should -Be 1
        }

        It 'frames typed lines with -Framing LengthPrefix and dumps each echoed message whole with -Hex' {
            $listener = New-RawListener
            try {
                $handle = Start-BackgroundScript -ArgumentList $ModulePath, $listener.LocalEndpoint.Port {
                    param($m, $p) Import-Module $m
                    'hi', ('x' * 20) | Enter-TcpSession 127.0.0.1 $p -Framing LengthPrefix -PrefixSize 2 -PassThru -Linger 10 |
                        ForEach-Object { "$($_.Length) $($_.Text)" }
                }
                $peer = Receive-RawConnection $listener
                # What the session sent: each line behind its 2-byte length, no newline.
                ConvertTo-Hex (Read-RawBytes $peer 26 -Timeout 10) | Should -Be ('00-02-68-69-00-14-' + ((@('78') * 20) -join '-'))
                Send-RawBytes $peer ([byte[]](0, 3) + [Text.Encoding]::ASCII.GetBytes('abc'))
                $peer.Close()
                Wait-BackgroundScript $handle -Timeout 15 | Should -Be '3 abc'
            } finally {
                $listener.Stop()
            }
        }

        It 'refuses the client connection parameters with -Listen and -Connection' {
            $server = Start-TcpEchoServer -Port 0
            $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
            (Get-Refusal { 'x' | Enter-TcpSession -Connection $client -UseTls }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            (Get-Refusal { Enter-TcpSession -Listen -Port (Get-FreeTcpPort) -LocalPort 1234 -Line 'x' }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            $client.State | Should -Be 'Open'
        }

        It 'refuses framing parameters with a -Connection, and refuses a line the framing can''t send' {
            $server = Start-TcpEchoServer -Port 0
            $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
            (Get-Refusal { 'x' | Enter-TcpSession -Connection $client -Framing Raw }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            $fixed = Start-TcpEchoServer -Port 0 -Framing FixedLength -MessageLength 4
            $out = 'abcd', 'toolong', 'efgh' | Enter-TcpSession 127.0.0.1 $fixed.Port -Framing FixedLength -MessageLength 4 -PassThru -ErrorVariable failures -ErrorAction SilentlyContinue
            $out.Text | Should -Be 'abcd', 'efgh'
            $failures.Count | Should -Be 1
            "$failures" | Should -BeLike '*7 bytes*FixedLength*4 bytes*'
        }

        It 'uses -NewLine and -Encoding for what it sends' {
            $listener = New-RawListener
            try {
                $job = Start-ThreadJob -ArgumentList $ModulePath, $listener.LocalEndpoint.Port {
                    param($m, $p) Import-Module $m; 'é' | Enter-TcpSession 127.0.0.1 $p -NewLine "`r`n" -Encoding latin1 -Linger 2
                }
                $peer = Receive-RawConnection $listener
                ConvertTo-Hex (Read-RawToEnd $peer) | Should -Be 'E9-0D-0A'
                $peer.Close()
                $null = $job | Wait-Job -Timeout 15
                $job.State | Should -Be Completed
            } finally {
                $listener.Stop()
                Get-Job | Remove-Job -Force
            }
        }

        It 'on a -Connection it was given sends the lines and leaves the connection open' {
            $server = Start-TcpEchoServer -Port 0
            $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
            'ping' | Enter-TcpSession -Connection $client -PassThru | Out-Null
            $client.State | Should -Be Open
            $client.MessagesSent | Should -Be 1
            Wait-Until { $server.MessagesReceived -eq 1 } -Because 'the echo server read the line'
        }
    }

    Describe 'Enter-TcpSession failures and Ctrl+C' {
        It 'refuses port 0 for a connection' {
            { Enter-TcpSession 127.0.0.1 0 -Line x } | Should -Throw -ErrorId 'InvalidArgument*'
        }

        It 'fails with ConnectionRefused when nobody listens' {
            $port = Get-FreeTcpPort
            { 'x' | Enter-TcpSession 127.0.0.1 $port } | Should -Throw -ErrorId 'ConnectionRefused*'
        }

        It 'with -Listen and -Timeout fails with ConnectTimeout when no client comes, and frees the port' {
            $port = Get-FreeTcpPort
            { 'x' | Enter-TcpSession -Listen -Port $port -Timeout 0.3 } | Should -Throw -ErrorId 'ConnectTimeout*'
            Test-PortBindable $port | Should -BeTrue
        }

        It 'reads -Timeout and -Linger numbers as seconds, takes -Linger 0 and refuses -Timeout 0' {
            $port = Get-FreeTcpPort
            $r = Invoke-Captured { 'x' | Enter-TcpSession -Listen -Port $port -Timeout 0.5 }
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ConnectTimeout*'
            $r.Errors[0].Exception.Message | Should -BeLike '*within 0.5 s*'
            $r.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.4
            (Get-Refusal { 'x' | Enter-TcpSession 127.0.0.1 $port -Timeout 0 }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            (Get-Refusal { 'x' | Enter-TcpSession 127.0.0.1 $port -Linger ([timespan]::MaxValue) }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
            $server = Start-TcpEchoServer -Port 0
            'y' | Enter-TcpSession 127.0.0.1 $server.Port -Linger 0 -PassThru | Out-Null
            Wait-Until { $server.MessagesReceived -eq 1 } -Timeout 10
        }

        It 'stopped (Ctrl+C) while it waits for a client, closes the listener' {
            $port = Get-FreeTcpPort
            $handle = Start-BackgroundScript -ArgumentList $ModulePath, $port {
                param($m, $p) Import-Module $m; 'x' | Enter-TcpSession -Listen -Port $p
            }
            try {
                Wait-Until { -not (Test-PortBindable $port) } -Timeout 10 -Because 'the session listens'
                $stop = $handle.PowerShell.BeginStop($null, $null)
                $stop.AsyncWaitHandle.WaitOne(10000) | Should -BeTrue
                Test-PortBindable $port | Should -BeTrue
            } finally {
                Stop-BackgroundScript $handle
            }
        }

        It 'reports a line longer than -MaxLineLength as LineTooLong and ends' {
            $listener = New-RawListener
            try {
                $handle = Start-BackgroundScript -ArgumentList $ModulePath, $listener.LocalEndpoint.Port {
                    param($m, $p) Import-Module $m
                    $r = Enter-TcpSession 127.0.0.1 $p -MaxLineLength 10 -Line 'x' -Linger 10 -PassThru 2>&1
                    $r | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { "error $($_.FullyQualifiedErrorId)" } else { "text $($_.Text)" } }
                }
                $peer = Receive-RawConnection $listener
                Send-RawBytes $peer "short`n$('y' * 50)`n"
                $out = Wait-BackgroundScript $handle -Timeout 15
                $out | Should -Be 'text short', 'error LineTooLong,PSTcp.Commands.EnterTcpSessionCommand'
                $peer.Close()
            } finally {
                $listener.Stop()
            }
        }
    }
}

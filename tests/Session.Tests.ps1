# Enter-TcpSession: an ncat-like session. Standard input matters here, so most cases run the
# session in a child pwsh whose standard input is a pipe this test writes to line by line and
# whose output it watches as it comes, always with bounded waits.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").ProviderPath

    Import-Module "$PSScriptRoot/ChildProcess.psm1" -Force

    function Start-SessionChild([string] $Code) {
        Start-ChildPwsh -Code "`$ErrorActionPreference = 'Stop'`nImport-Module '$($ModulePath -replace "'", "''")'`n$Code"
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

        It 'uses -NewLine and -Encoding for what it sends' {
            $listener = New-RawListener
            try {
                $job = Start-ThreadJob -ArgumentList $ModulePath, $listener.LocalEndpoint.Port {
                    param($m, $p) Import-Module $m; 'é' | Enter-TcpSession 127.0.0.1 $p -NewLine "`r`n" -Encoding latin1 -Linger '00:00:02'
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
            $server.MessagesReceived | Should -Be 1
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
            { 'x' | Enter-TcpSession -Listen -Port $port -Timeout '00:00:00.3' } | Should -Throw -ErrorId 'ConnectTimeout*'
            Test-PortBindable $port | Should -BeTrue
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
                    $r = Enter-TcpSession 127.0.0.1 $p -MaxLineLength 10 -Line 'x' -Linger '00:00:10' -PassThru 2>&1
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

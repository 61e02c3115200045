# Handler servers with real clients (Debian redis-tools and curl; .ci/run installs them):
# redis-benchmark and redis-cli against a -Reply fake and a -ScriptBlock fake of Redis, and curl
# against a -ScriptBlock fake HTTP server that answers, then closes. Every client run is
# bounded by coreutils timeout.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    foreach ($tool in 'redis-benchmark', 'redis-cli', 'curl', 'timeout') {
        if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) {
            throw "$tool is not installed: .ci/run installs redis-tools and curl (apt-get install -y redis-tools curl)."
        }
    }

    # What redis-benchmark asks before it starts (CONFIG GET save / appendonly, as RESP arrays
    # whose last line is the parameter) and PING, answered the way redis-server does.
    $redisReplies = [ordered]@{
        'PING'       = '+PONG'
        'save'       = '*2', '$4', 'save', '$0', ''
        'appendonly' = '*2', '$10', 'appendonly', '$2', 'no'
    }

    function Invoke-Bounded([string] $Seconds, [string] $Tool, [string[]] $Arguments) {
        $output = & timeout $Seconds $Tool @Arguments 2>&1 | Out-String
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $output -replace "`r", "`n" }
    }
}

Describe 'redis clients against handler servers' {
    AfterEach { Clear-PSTcpState }

    It 'runs redis-benchmark -t ping_inline against a -Reply fake without errors' {
        $server = Start-TcpServer -Port 0 -NoQueue -NewLine "`r`n" -Reply $redisReplies
        $run = Invoke-Bounded 60 redis-benchmark '-p', $server.Port, '-n', '2000', '-t', 'ping_inline', '-q'
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'PING_INLINE: [\d.]+ requests per second'
        $run.Output | Should -Not -Match 'WARNING|ERROR|Error' -Because $run.Output
        $server.ErrorCount | Should -Be 0
    }

    It 'runs redis-benchmark -t ping_inline against a -ScriptBlock fake without errors' {
        $server = Start-TcpServer -Port 0 -NoQueue -NewLine "`r`n" -ScriptBlock {
            param($Message)
            switch ($Message.Text) {
                'PING' { '+PONG' }
                'save' { '*2', '$4', 'save', '$0', '' }
                'appendonly' { '*2', '$10', 'appendonly', '$2', 'no' }
            }
        }
        $run = Invoke-Bounded 60 redis-benchmark '-p', $server.Port, '-n', '2000', '-t', 'ping_inline', '-q'
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match 'PING_INLINE: [\d.]+ requests per second'
        $run.Output | Should -Not -Match 'WARNING|ERROR|Error' -Because $run.Output
        $server.ErrorCount | Should -Be 0
    }

    It 'answers redis-cli PING (a RESP array) and an unknown command through -DefaultReply' {
        $server = Start-TcpServer -Port 0 -NewLine "`r`n" -Reply ([ordered]@{ 'PING' = '+PONG'; '`**' = $null; '$*' = $null }) -DefaultReply '-ERR unknown command'
        $ping = Invoke-Bounded 10 redis-cli '-p', $server.Port, 'PING'
        $ping.ExitCode | Should -Be 0
        $ping.Output.Trim() | Should -BeExactly 'PONG'
        $other = Invoke-Bounded 10 redis-cli '-p', $server.Port, 'FLUSHALL'
        $other.Output.Trim() | Should -BeExactly 'ERR unknown command'
    }
}

Describe 'curl against a -ScriptBlock HTTP fake' {
    AfterEach { Clear-PSTcpState }

    It 'prints the body of a reply that ends with the server closing the connection' {
        $server = Start-TcpServer -Port 0 -NewLine "`r`n" -ScriptBlock {
            param($Message, $Connection)
            # The request head ends with an empty line: answer, then close (Connection: close).
            if ($Message.Text -eq '') {
                $body = 'hello from PSTcp'
                'HTTP/1.1 200 OK'
                'Content-Type: text/plain'
                'Connection: close'
                ''
                $body
                $Connection | Disconnect-TcpEndpoint
            }
        }
        $run = Invoke-Bounded 10 curl '-s', '--max-time', '5', "http://127.0.0.1:$($server.Port)/"
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output.Trim() | Should -BeExactly 'hello from PSTcp'
        $server.ErrorCount | Should -Be 0
    }
}

Describe 'README: the Pester example of a Redis-like -Reply fake' {
    It 'passes when run with Pester' {
        $readme = Get-Content (Join-Path $PSScriptRoot '../README.md') -Raw
        $block = [regex]::Matches($readme, '(?s)```powershell\r?\n(.*?)```') | ForEach-Object { $_.Groups[1].Value } |
            Where-Object { $_ -match "Describe 'Get-CacheValue'" } | Select-Object -First 1
        $block | Should -Not -BeNullOrEmpty -Because 'README.md has the Redis-like Pester example'
        $root = (Resolve-Path "$PSScriptRoot/..").Path
        $file = Join-Path ([IO.Path]::GetTempPath()) "pstcp-readme-redis-$PID.Tests.ps1"
        Set-Content -Path $file -Value ("BeforeAll { Import-Module '$root/out/PSTcp' }`n" + $block)
        $runner = "Import-Module '$((Get-Module Pester).Path)'; `$r = Invoke-Pester -Path '$file' -PassThru -Output None; " +
            "'passed=' + `$r.PassedCount + ' failed=' + `$r.FailedCount"
        try {
            $run = Invoke-ChildPwsh -ArgumentList '-Command', $runner -Timeout 90 -WorkingDirectory $root
            $run.StdOut.Trim() | Should -BeExactly 'passed=2 failed=0' -Because "$($run.StdOut)`n$($run.StdErr)"
        } finally {
            Remove-Item $file -ErrorAction SilentlyContinue
        }
    }
}

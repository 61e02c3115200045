BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $repoRoot = (Resolve-Path "$PSScriptRoot/..").ProviderPath
    $modulePath = Join-Path $repoRoot 'out/PSTcp/PSTcp.psd1'
    $helpersPath = Join-Path $PSScriptRoot 'TestHelpers.psm1'

    # The last line of a child's output that is a JSON object.
    function Get-ChildResult($Run) {
        $json = @($Run.StdOut -split "`r?`n" | Where-Object { $_.TrimStart().StartsWith('{') })
        if ($json.Count -eq 0) {
            throw "child printed no result. exit=$($Run.ExitCode) timedOut=$($Run.TimedOut)`nstdout:`n$($Run.StdOut)`nstderr:`n$($Run.StdErr)"
        }
        $json[-1] | ConvertFrom-Json
    }
}

Describe 'Remove-Module PSTcp' {
    It 'stops servers, closes connections, ends consumer jobs and leaves no port bound' {
        # A loaded assembly can't be unloaded here, so this runs in a child pwsh.
        $script = Join-Path $TestDrive 'remove-module.ps1'
        Set-Content -LiteralPath $script -Value @'
param($ModulePath, $HelpersPath)
$ErrorActionPreference = 'Stop'
Import-Module $HelpersPath
Import-Module $ModulePath
$server = Start-TcpEchoServer -Port 0
$port = $server.Port
$client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $port
Send-TcpLine -Connection $client -Line 'hello'
$echo = @(Receive-TcpMessage -Connection $client -Count 1 -Timeout ([TimeSpan]::FromSeconds(10)))
$raw = New-RawClient $port
Send-RawBytes $raw "raw`n"
$null = Read-RawBytes $raw 4
Wait-Until { $server.ConnectionCount -eq 2 }
$job = Receive-TcpMessage -Server $server -AsJob
$clientJob = Receive-TcpMessage -Connection $client -AsJob
$before = "$($job.State)/$($clientJob.State)"
"port $port"

Remove-Module PSTcp

$bindable = Test-PortBindable $port
$ended = $true
try { Wait-Until { $job.State -ne 'Running' -and $clientJob.State -ne 'Running' } -Timeout 10 } catch { $ended = $false }
# The server side of the raw connection must be closed: EOF (or a reset) soon.
$rawClosed = try { $null = Read-RawToEnd $raw -Timeout 10; $true } catch { $_.Exception.Message -notmatch 'no EOF' }
$modules = @(Get-Module PSTcp).Count
[pscustomobject]@{
    Port        = $port
    Echo        = "$($echo.Text)"
    Bindable    = $bindable
    ServerState = "$($server.State)"
    ClientState = "$($client.State)"
    RawClosed   = $rawClosed
    Before      = $before
    Ended       = $ended
    JobState    = "$($job.State)"
    ClientJob   = "$($clientJob.State)"
    Modules     = $modules
} | ConvertTo-Json -Compress
'@
        $run = Invoke-ChildPwsh -ArgumentList '-File', $script, '-ModulePath', $modulePath, '-HelpersPath', $helpersPath -Timeout 60
        $run.TimedOut | Should -BeFalse -Because "the child must finish; a running job must not keep it alive.`n$($run.StdErr)"
        $result = Get-ChildResult $run
        $result.Echo | Should -BeExactly 'hello'
        $result.Port | Should -BeGreaterThan 0
        $result.Modules | Should -Be 0
        $result.Bindable | Should -BeTrue -Because 'no socket may stay bound after Remove-Module'
        $result.ServerState | Should -Be 'Stopped'
        $result.ClientState | Should -Be 'Closed'
        $result.RawClosed | Should -BeTrue -Because 'accepted connections are closed too'
        $result.Before | Should -Be 'Running/Running'
        $result.Ended | Should -BeTrue
        $result.JobState | Should -BeIn @('Completed', 'Stopped')
        $result.ClientJob | Should -BeIn @('Completed', 'Stopped', 'Failed')
        $run.ExitCode | Should -Be 0
    }

    It 'imports in a fresh process' {
        $run = Invoke-ChildPwsh -ArgumentList '-Command', "Import-Module '$modulePath'; (Get-Command -Module PSTcp).Name | Sort-Object" -Timeout 60
        $run.ExitCode | Should -Be 0 -Because $run.StdErr
        $names = @($run.StdOut -split "`r?`n" | Where-Object { $_ })
        foreach ($cmd in 'Start-TcpEchoServer', 'Get-TcpServer', 'Stop-TcpServer', 'Connect-TcpEndpoint',
            'Send-TcpLine', 'Receive-TcpMessage', 'Get-TcpConnection', 'Disconnect-TcpEndpoint') {
            $names | Should -Contain $cmd
        }
    }
}

Describe 'Demo' {
    It 'echoes three lines from standard input and finishes by itself' {
        $demo = Join-Path $repoRoot 'build/Demo.ps1'
        Test-Path $demo | Should -BeTrue -Because 'build/Demo.ps1 runs the seed scenario'
        $lines = 'first demo line', 'second demo line', 'third demo line'
        $run = Invoke-ChildPwsh -ArgumentList '-File', $demo, '-ModulePath', (Join-Path $repoRoot 'out/PSTcp') `
            -StandardInput (($lines -join "`n") + "`n") -Timeout 60 -WorkingDirectory $repoRoot
        $run.TimedOut | Should -BeFalse -Because "the demo must end when stdin ends.`nstdout:`n$($run.StdOut)`nstderr:`n$($run.StdErr)"
        $run.ExitCode | Should -Be 0 -Because $run.StdErr
        $output = $run.StdOut -replace "`e\[[0-9;]*m", ''
        foreach ($line in $lines) {
            $output | Should -Match ('---> .*' + [regex]::Escape($line))
        }
        ([regex]::Matches($output, '---> ')).Count | Should -BeGreaterOrEqual 3
    }
}

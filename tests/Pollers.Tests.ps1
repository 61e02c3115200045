#requires -Version 7.0
# Issue 22: on Linux the pollers follow the cores the process may use (its affinity, a
# container's CPU limit), and are started lazily: a session that opens no connection has none,
# one with a single connection has one. Counted from the outside, as threads named
# "PSTcp poller N" in /proc/<pid>/task, in fresh child processes (pollers are per process).

BeforeDiscovery {
    $script:OnLinux = $IsLinux -and (Test-Path /proc/self/task)
    $script:HasTaskset = $OnLinux -and [bool](Get-Command taskset -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").ProviderPath

    # Prints one JSON object: the poller threads after the import and a Get-Date, after one
    # client connection to a server, and after eight.
    $script:ChildScript = @'
param($ModulePath)
$ErrorActionPreference = 'Stop'
function Count-Pollers {
    @(Get-ChildItem "/proc/$PID/task" | Where-Object {
        (Get-Content -Raw -LiteralPath "$($_.FullName)/comm" -ErrorAction SilentlyContinue) -match '^PSTcp poller'
    }).Count
}
Import-Module $ModulePath
$null = Get-Date
$idle = Count-Pollers
$server = Start-TcpEchoServer -Port 0 -NoQueue
$clients = [System.Collections.Generic.List[object]]::new()
$clients.Add((Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port))
# One client and the server's side of it: two registrations, at most two pollers.
Send-TcpLine -Connection $clients[0] -Line 'one'
$null = Receive-TcpMessage -Connection $clients[0] -Count 1 -Timeout 30
$one = Count-Pollers
foreach ($i in 2..8) { $clients.Add((Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port)) }
foreach ($c in $clients) { Send-TcpLine -Connection $c -Line 'x'; $null = Receive-TcpMessage -Connection $c -Count 1 -Timeout 30 }
$eight = Count-Pollers
# Idle: eight connections open, nothing sent for a second; the pollers' CPU time (utime + stime,
# in clock ticks) must not grow (one tick allowed for the wake-up that ends a read in flight).
function Get-PollerTicks {
    $sum = 0
    foreach ($task in Get-ChildItem "/proc/$PID/task") {
        if ((Get-Content -Raw -LiteralPath "$($task.FullName)/comm" -ErrorAction SilentlyContinue) -notmatch '^PSTcp poller') { continue }
        $stat = Get-Content -Raw -LiteralPath "$($task.FullName)/stat"
        $fields = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
        $sum += [long]$fields[11] + [long]$fields[12]
    }
    $sum
}
$before = Get-PollerTicks
Start-Sleep -Seconds 1
$idleTicks = (Get-PollerTicks) - $before
$clients | Disconnect-TcpEndpoint
$server | Stop-TcpServer
[pscustomobject]@{ Cores = [Environment]::ProcessorCount; Idle = $idle; One = $one; Eight = $eight; IdleTicks = $idleTicks } | ConvertTo-Json -Compress
'@

    # Runs the child script, optionally under `taskset -c <cpus>`, with extra environment.
    function Invoke-PollerChild([string] $Cpus, [hashtable] $Environment = @{}) {
        $launch = Get-PwshLaunch
        $file = if ($Cpus) { 'taskset' } else { $launch.FileName }
        $info = [System.Diagnostics.ProcessStartInfo]::new($file)
        if ($Cpus) { $info.ArgumentList.Add('-c'); $info.ArgumentList.Add($Cpus); $info.ArgumentList.Add($launch.FileName) }
        foreach ($a in @($launch.Arguments) + @('-NoProfile', '-NonInteractive', '-Command', "& { $ChildScript } '$ModulePath'")) { $info.ArgumentList.Add($a) }
        foreach ($k in $Environment.Keys) { $info.Environment[$k] = $Environment[$k] }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.RedirectStandardInput = $true
        $process = [System.Diagnostics.Process]::Start($info)
        try {
            $process.StandardInput.Close()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            if (-not $process.WaitForExit(120000)) { $process.Kill($true); throw 'the child pwsh timed out' }
            $process.WaitForExit()
            $process.ExitCode | Should -Be 0 -Because ($stdout.Result + $stderr.Result)
            ($stdout.Result -split "`n" | Where-Object { $_ -match '^\{' } | Select-Object -Last 1) | ConvertFrom-Json
        } finally { $process.Dispose() }
    }
}

Describe 'Poller threads' -Skip:(-not $OnLinux) {
    It 'none in a session that opens no connection; one per usable core at most, started as connections come' {
        $r = Invoke-PollerChild
        $r.Idle | Should -Be 0
        $r.One | Should -BeIn 1, 2
        $r.One | Should -BeLessOrEqual $r.Cores
        $r.Eight | Should -Be ([Math]::Min($r.Cores, 16))
        # Blocked in epoll_wait: no CPU while the connections are idle.
        $r.IdleTicks | Should -BeLessOrEqual 1
    }

    It 'follows the process affinity (taskset -c 0: one core, one poller)' -Skip:(-not $HasTaskset) {
        $r = Invoke-PollerChild -Cpus 0
        $r.Cores | Should -Be 1
        $r.Idle | Should -Be 0
        $r.One | Should -Be 1
        $r.Eight | Should -Be 1
    }

    It 'takes PSTCP_POLLERS over the core count' {
        $r = Invoke-PollerChild -Environment @{ PSTCP_POLLERS = '3' }
        $r.Idle | Should -Be 0
        # Two registrations so far: the third poller is not started until it is given one.
        $r.One | Should -BeIn 1, 2
        $r.Eight | Should -Be 3
    }
}

#requires -Version 7.0
<#
.SYNOPSIS
    Measures handler servers with a real client: redis-benchmark -t ping_inline against
    Start-TcpServer -Reply, the equivalent -ScriptBlock, and real redis-server, in the same run.
.DESCRIPTION
    1. Throughput: redis-benchmark -t ping_inline -n <Requests> -c 50 with -P 1 and -P 16 against
       each of the three servers, -Repeat times each (servers interleaved, so load on the machine
       hits them alike); the median requests/s, and each PSTcp figure as a ratio of redis-server's.
       Goals (issue 12): -Reply and -ScriptBlock >= 20,000 requests/s at -P 1 and >= 100,000 at
       -P 16 on the 2-core reference machine.
    2. What one handler call costs: one client pipelining 64 PINGs at a time (-c 1 -P 64) against
       a -ScriptBlock server with one worker (-ThrottleLimit 1), and against the -Reply server
       (no runspace); the difference of their time per request is the handler call, in
       microseconds (a call through ScriptBlock.InvokeWithContext plus framing its output).
    The fakes answer what redis-benchmark asks first (CONFIG GET save / appendonly) as
    redis-server does, so it starts without a warning. Prints a table, saves JSON as
    <OutDir>/handlers-<stamp>.json and latest-handlers.json. Needs redis-server and
    redis-benchmark (Debian redis-server, redis-tools).
.EXAMPLE
    dotnet pwsh bench/Measure-Handlers.ps1 -ModulePath out/PSTcp
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [string] $OutDir,
    [ValidateRange(1000, 10000000)]
    [int] $Requests = 20000,
    [ValidateRange(1, 9)]
    [int] $Repeat = 3
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$BenchDir = $PSScriptRoot
$Root = Split-Path $BenchDir -Parent
. (Join-Path $BenchDir 'BenchTools.ps1')
$inv = [Globalization.CultureInfo]::InvariantCulture

$ModulePath = Resolve-UserPath $ModulePath (Join-Path $Root 'out/PSTcp')
$OutDir = Resolve-UserPath $OutDir (Join-Path $Root 'out/bench')
if (-not (Test-Path (Join-Path $ModulePath 'PSTcp.psd1'))) { throw "No module at $ModulePath (build it with: dotnet pwsh ./build.ps1)" }
foreach ($tool in 'redis-server', 'redis-benchmark', 'redis-cli') {
    if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) {
        Write-Warning "Measure-Handlers: $tool is not installed (apt-get install -y redis-server redis-tools); skipped."
        return
    }
}

# One redis-benchmark run, bounded; its requests per second, or $null with the reason.
function Measure-Ping([int] $Port, [int] $Clients, [int] $Pipeline, [int] $Count = $Requests) {
    $run = Invoke-Child 'redis-benchmark' @('-p', "$Port", '-t', 'ping_inline', '-n', "$Count", '-c', "$Clients", '-P', "$Pipeline", '-q') -TimeoutSeconds 120
    $text = ($run.Stdout + $run.Stderr) -replace "`r", "`n"
    $m = [regex]::Matches($text, 'PING_INLINE: ([\d.]+) requests per second')
    if ($run.TimedOut -or $run.ExitCode -ne 0 -or $m.Count -eq 0 -or $text -match 'WARNING|ERROR') {
        return [pscustomobject]@{ Rps = $null; Error = "exit $($run.ExitCode)$(if ($run.TimedOut) { ', timed out' }): $($text.Trim() -split "`n" | Select-Object -Last 2)" }
    }
    [pscustomobject]@{ Rps = [double]::Parse($m[$m.Count - 1].Groups[1].Value, $inv); Error = $null }
}

function Format-N($Value, [string] $Format = 'N0') {
    if ($null -eq $Value) { return 'n/a' }
    ([double]$Value).ToString($Format, $inv)
}

$snapshotRoot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-handlers-module-$PID"
$redis = $null
try {
    $snapshot = Join-Path $snapshotRoot 'PSTcp'
    $null = New-Item -ItemType Directory -Force $snapshot
    Copy-Item (Join-Path $ModulePath '*') $snapshot -Recurse -Force
    Import-Module (Join-Path $snapshot 'PSTcp.psd1') -Force
    $loadAtStart = Get-Content /proc/loadavg -ErrorAction SilentlyContinue

    # ------------------------------------------------------------------ the servers
    $redisPort = & {
        $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0); $l.Start()
        try { $l.LocalEndpoint.Port } finally { $l.Stop() }
    }
    $redis = Start-Child 'redis-server' @('--port', "$redisPort", '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no')
    $watch = [Diagnostics.Stopwatch]::StartNew()
    while ((& redis-cli -p $redisPort PING 2>$null) -ne 'PONG') {
        if ($watch.Elapsed.TotalSeconds -gt 15 -or $redis.HasExited) { throw "redis-server did not start on port $redisPort." }
        Start-Sleep -Milliseconds 50   # polling for the condition (a PONG), bounded above
    }

    $replies = [ordered]@{
        'PING'       = '+PONG'
        'save'       = '*2', '$4', 'save', '$0', ''
        'appendonly' = '*2', '$10', 'appendonly', '$2', 'no'
    }
    $handler = {
        param($Message)
        switch ($Message.Text) {
            'PING' { '+PONG' }
            'save' { '*2', '$4', 'save', '$0', '' }
            'appendonly' { '*2', '$10', 'appendonly', '$2', 'no' }
        }
    }
    $reply = Start-TcpServer -Port 0 -NoQueue -NewLine "`r`n" -Reply $replies -Name BenchReply
    $script = Start-TcpServer -Port 0 -NoQueue -NewLine "`r`n" -ScriptBlock $handler -Name BenchScriptBlock
    $oneWorker = Start-TcpServer -Port 0 -NoQueue -NewLine "`r`n" -ScriptBlock $handler -ThrottleLimit 1 -Name BenchOneWorker
    $servers = [ordered]@{ 'redis-server' = $redisPort; '-Reply' = $reply.Port; '-ScriptBlock' = $script.Port }

    # Warm-up: JIT, the handler runspaces, redis-benchmark's own start.
    foreach ($port in @($servers.Values) + $oneWorker.Port) { $null = Measure-Ping $port 50 16 2000 }

    # ------------------------------------------------------------------ 1. throughput
    $runs = [Collections.Generic.List[object]]::new()
    foreach ($pipeline in 1, 16) {
        Write-Host "redis-benchmark -t ping_inline -n $Requests -c 50 -P $pipeline, $Repeat run(s) per server..."
        foreach ($r in 1..$Repeat) {
            foreach ($name in $servers.Keys) {
                $m = Measure-Ping $servers[$name] 50 $pipeline
                $runs.Add([pscustomobject]@{ Scenario = "c=50 P=$pipeline"; Server = $name; Repetition = $r; Rps = $m.Rps; Error = $m.Error })
                if ($m.Error) { Write-Warning "$name, P=$pipeline, run ${r}: $($m.Error)" }
            }
        }
    }

    # ------------------------------------------------------------------ 2. one handler call
    Write-Host 'One client, 64 pipelined: one worker against -Reply...'
    $oneWorkerRps = [Collections.Generic.List[double]]::new()
    $replyRps = [Collections.Generic.List[double]]::new()
    foreach ($r in 1..$Repeat) {
        $s = Measure-Ping $oneWorker.Port 1 64 ([Math]::Max($Requests, 100000))
        $p = Measure-Ping $reply.Port 1 64 ([Math]::Max($Requests, 100000))
        if ($s.Rps) { $oneWorkerRps.Add($s.Rps) }
        if ($p.Rps) { $replyRps.Add($p.Rps) }
    }
    # Medians first, then the difference: one noisy run must not decide the figure.
    $oneWorkerMedian = Get-Median $oneWorkerRps.ToArray()
    $replyMedian = Get-Median $replyRps.ToArray()
    $callMicroseconds = if ($oneWorkerMedian -and $replyMedian) { 1e6 / $oneWorkerMedian - 1e6 / $replyMedian } else { $null }

    # ------------------------------------------------------------------ report
    $goals = @{ 'c=50 P=1' = 20000; 'c=50 P=16' = 100000 }
    $rows = foreach ($scenario in 'c=50 P=1', 'c=50 P=16') {
        $median = @{}
        foreach ($name in $servers.Keys) {
            $values = @($runs | Where-Object { $_.Scenario -eq $scenario -and $_.Server -eq $name -and $_.Rps } | ForEach-Object Rps)
            $median[$name] = Get-Median $values
        }
        $ratio = { param($v) if ($v -and $median['redis-server']) { Format-N ($v / $median['redis-server']) 'N2' } else { 'n/a' } }
        $goal = $goals[$scenario]
        [pscustomobject][ordered]@{
            Scenario            = $scenario
            'redis-server'      = Format-N $median['redis-server']
            '-Reply'            = Format-N $median['-Reply']
            '-ScriptBlock'      = Format-N $median['-ScriptBlock']
            'Reply/redis'       = & $ratio $median['-Reply']
            'ScriptBlock/redis' = & $ratio $median['-ScriptBlock']
            Goal                = Format-N $goal
            Met                 = if ($median['-Reply'] -ge $goal -and $median['-ScriptBlock'] -ge $goal) { 'yes' } else { 'NO' }
        }
    }

    Write-Host ''
    Write-Host "Handler servers, redis-benchmark -t ping_inline (requests/s, median of $Repeat; load average at start: $loadAtStart)"
    $rows | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
    Write-Host ("One handler call: {0} us (one client, 64 pipelined: one worker {1} requests/s, -Reply {2}; the difference of their time per request)" -f (Format-N $callMicroseconds 'N1'), (Format-N $oneWorkerMedian), (Format-N $replyMedian))

    $stamp = (Get-Date).ToString('yyyyMMdd-HHmmss')
    $null = New-Item -ItemType Directory -Force $OutDir
    $report = [ordered]@{
        timestamp = (Get-Date).ToString('o')
        load_average_at_start = $loadAtStart
        requests = $Requests
        repeat = $Repeat
        summary = @($rows)
        handler_call_microseconds = $callMicroseconds
        one_worker_c1_p64_rps = $oneWorkerMedian
        reply_c1_p64_rps = $replyMedian
        runs = @($runs)
    }
    $jsonPath = Join-Path $OutDir "handlers-$stamp.json"
    $report | ConvertTo-Json -Depth 6 | Set-Content -Path $jsonPath -Encoding utf8NoBOM
    Copy-Item $jsonPath (Join-Path $OutDir 'latest-handlers.json') -Force
    Write-Host "Raw results: $jsonPath"
} finally {
    Get-TcpServer -ErrorAction SilentlyContinue | Where-Object Name -like 'Bench*' | Stop-TcpServer -ErrorAction SilentlyContinue
    Stop-Child $redis 3000
    Remove-Item -Recurse -Force $snapshotRoot -ErrorAction SilentlyContinue
}

#requires -Version 7.0
<#
.SYNOPSIS
    Benchmarks PSTcp's echo server against a Go and a System.IO.Pipelines peer on loopback.
.DESCRIPTION
    Builds the load generator (bench/PSTcp.Bench) and the peers (bench/peers) in Release, then
    for each scenario starts each server as a child process - PSTcp (a child pwsh running
    bench/ServerHost.ps1: Start-TcpEchoServer with its default queue, and with -NoQueue), Go,
    Pipelines, in turn - drives it with the generator, which verifies every echoed byte and
    reads the server's CPU time and memory from /proc, and prints one table of medians with the
    ratios against Go from the same run, then the issue targets. Raw results, with machine
    info, are saved as JSON in -OutDir.

    Throughput and latency scenarios run -Repeat times (the table shows the median); memory,
    fairness and the PSTcp-only comparisons (Stop-Job, LengthPrefix framing, the relay against
    socat) run once. Every server is started fresh for each run and always stopped at the end.
    A server or cmdlet that is not available (module not built, no `go` or `socat` on PATH,
    a cmdlet or parameter this build does not have) is skipped with a message.
.PARAMETER ModulePath
    The built module directory (containing PSTcp.psd1). Default <repo>/out/PSTcp.
.PARAMETER OutDir
    Where the raw JSON results go. Default <repo>/out/bench.
.PARAMETER Quick
    Short runs, one repetition, fewer connections: a smoke test (about two minutes).
.PARAMETER Repeat
    Runs per throughput scenario and server; the table shows the median. Default 3 (1 with -Quick).
.PARAMETER Server
    Which of the four compared servers to run: PSTcp, PSTcpNoQueue, Go, Pipelines (default all).
.PARAMETER Scenario
    Which scenarios to run (see bench/README.md). Default: all but pipelined-1, which runs only
    when named; -Quick also leaves out pingpong, window-64, pipelined-64 and churn.
.PARAMETER Warmup
    Seconds of load before the timed part of the rate and latency scenarios (pingpong, window,
    pipelined, churn), on every server alike. Default 3 (0.3 with -Quick): a fresh PSTcp
    server's code is still being recompiled by the JIT (tiered, with profile-guided
    optimisation) for about 2-3 s of load, and a shorter warm-up measures that, not the server
    (-Warmup 0.5 shows it). Bulk, fairness, dribble and idle are timed from the start.
.PARAMETER IdleConnections
    Connections the idle scenario holds. Default 10000 (2000 with -Quick).
.PARAMETER DribbleConnections
    Connections the dribble scenario opens. Default 500.
.EXAMPLE
    dotnet pwsh bench/Invoke-Benchmark.ps1 -Quick
.EXAMPLE
    dotnet pwsh bench/Invoke-Benchmark.ps1 -Scenario fairness-16,dribble -Server PSTcp,Go
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [string] $OutDir,
    [switch] $Quick,
    [ValidateRange(1, 9)]
    [int] $Repeat,
    [string[]] $Server = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines'),
    [string[]] $Scenario,
    [ValidateRange(0, 60)]
    [double] $Warmup = -1,
    [ValidateRange(10, 18000)]
    [int] $IdleConnections,
    [ValidateRange(1, 18000)]
    [int] $DribbleConnections = 500
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$BenchDir = $PSScriptRoot
$Root = Split-Path $BenchDir -Parent
. (Join-Path $BenchDir 'BenchTools.ps1')
. (Join-Path $BenchDir 'BenchServers.ps1')
. (Join-Path $BenchDir 'BenchScenarios.ps1')

$ModulePath = Resolve-UserPath $ModulePath (Join-Path $Root 'out/PSTcp')
$OutDir = Resolve-UserPath $OutDir (Join-Path $Root 'out/bench')
if (-not $Repeat) { $Repeat = if ($Quick) { 1 } else { 3 } }
if ($Warmup -lt 0) { $Warmup = if ($Quick) { 0.3 } else { 3 } }
if (-not $IdleConnections) { $IdleConnections = if ($Quick) { 2000 } else { 10000 } }
$inv = [Globalization.CultureInfo]::InvariantCulture

$Scenarios = Get-BenchScenarios -Quick:$Quick -Warmup $Warmup -IdleConnections $IdleConnections -DribbleConnections $DribbleConnections
$Compared = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines')
# -File passes 'a,b' as one string: accept comma-separated lists too.
$Server = @($Server -split ',' | ForEach-Object Trim | Where-Object { $_ })
foreach ($s in $Server) { if ($s -notin $Compared) { throw "Unknown -Server '$s' ($($Compared -join ', '))" } }
if ($Scenario) {
    $Scenario = @($Scenario -split ',' | ForEach-Object Trim | Where-Object { $_ })
    foreach ($s in $Scenario) { if ($s -notin $Scenarios.Keys) { throw "Unknown -Scenario '$s' ($($Scenarios.Keys -join ', '))" } }
    foreach ($k in @($Scenarios.Keys)) { if ($k -notin $Scenario) { $Scenarios.Remove($k) } }
} else {
    foreach ($k in @($Scenarios.Keys)) {
        if ($Scenarios[$k].Optional -or ($Quick -and $Scenarios[$k].NotQuick)) { $Scenarios.Remove($k) }
    }
}
# -Server narrows the compared servers; a PSTcp-only scenario runs when PSTcp is selected.
function Test-Selected([string] $Name) {
    if ($Name -in $Compared) { return $Name -in $Server }
    if ($Name -like 'Relay*' -or $Name -like 'PSTcp*') { return 'PSTcp' -in $Server -or 'PSTcpNoQueue' -in $Server }
    $true
}

# ------------------------------------------------------------------ one run
# Starts the server (and the Go target of a relay), runs the generator, stops both.
function Invoke-BenchRun([string] $ScenarioName, [hashtable] $Sc, [string] $ServerName, [int] $Rep) {
    $run = [ordered]@{ scenario = $ScenarioName; server = $ServerName; repetition = $Rep
                       ok = $false; exit_code = $null; elapsed_ms = $null; result = $null; error = $null }
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $srv = $null; $target = $null
    try {
        $spec = $servers[$ServerName]
        $values = @{}
        if ($spec.ContainsKey('NeedsTarget') -and $spec.NeedsTarget) {
            $target = Start-BenchServer $servers['Go']
            $values.target = $target.Port
        }
        if ($spec.ContainsKey('FixedPort')) { $values.port = Get-FreePort }
        $srv = Start-BenchServer $spec $values
        if ($srv -is [string]) { $script:unavailable[$ServerName] = $srv; $run.error = "skipped: $srv"; return $run }
        $endpoint = @('--host', '127.0.0.1', '--port', "$($srv.Port)")
        if ($Sc.ContainsKey('WarmArgs') -and $Sc.WarmArgs) {
            $warm = Invoke-Generator (@($generator) + $Sc.WarmArgs + $endpoint) 120 { '-' }
            if ($warm.ExitCode -ne 0) { throw "the warm-up run failed (exit $($warm.ExitCode)): $($warm.Stderr.Trim())" }
        }
        $genFile = 'dotnet'
        $genArgs = @($generator) + $Sc.Args + $endpoint
        if ($Sc.ContainsKey('Generator') -and $Sc.Generator -eq 'go-load') { $genFile = $goLoad; $genArgs = $Sc.Args + $endpoint }
        if (-not $spec.ContainsKey('NoPid')) { $genArgs += @('--pid', "$($srv.Process.Id)") }
        if ($Sc.Phases) { $genArgs += '--phases' }
        $onPhase = {
            param($name, $arg)
            if ($Sc.OnPhase) { return & $Sc.OnPhase $srv $run $name $arg $Sc }
            if ($srv.Control) { return Invoke-ServerCommand $srv "heap $arg" }
            '-'
        }
        $r = Invoke-Generator $genArgs $Sc.TimeoutSeconds $onPhase $genFile
        $run.exit_code = $r.ExitCode
        $json = ($r.Stdout -split "`n" | Where-Object { $_.TrimStart().StartsWith('{') } | Select-Object -Last 1)
        if ($json) { $run.result = $json | ConvertFrom-Json -AsHashtable }
        if ($r.TimedOut) { $run.error = 'generator timed out' }
        elseif (-not $json) { $run.error = "generator printed no result: $($r.Stderr.Trim())" }
        elseif (-not $run.result['ok']) { $run.error = ($run.result['first_errors'] | Select-Object -First 2) -join '; ' }
        $run.ok = $r.ExitCode -eq 0 -and $null -ne $run.result -and [bool]$run.result['ok']
        if ($run.ok -and $Sc.Derive) { & $Sc.Derive $run }
        if ($srv.Process.HasExited) {
            $run.ok = $false
            $run.error = "server exited during the run (code $($srv.Process.ExitCode))"
        }
    } catch {
        $run.error = "$_"
        $run.ok = $false
    } finally {
        foreach ($s in @($srv, $target)) {
            if ($s -isnot [psobject] -or $s -is [string]) { continue }
            Stop-Child $s.Process
            if (-not $run.ok -and $s.Stderr.Wait(1000) -and $s.Stderr.Result) {
                $run["$($s.Name)_stderr"] = $s.Stderr.Result.Substring(0, [Math]::Min(2000, $s.Stderr.Result.Length))
            }
        }
        $run.elapsed_ms = [Math]::Round($sw.Elapsed.TotalMilliseconds)
    }
    $run
}

# ------------------------------------------------------------------ main
$runs = [Collections.Generic.List[object]]::new()
$skipped = [ordered]@{}
$script:unavailable = [ordered]@{}
$benchStart = Get-Date
# Other work on the machine skews every figure: record the load when we start.
$loadAtStart = if (Test-Path /proc/loadavg) { (Get-Content /proc/loadavg -Raw).Trim() } else { $null }
try {
    Write-Host "Building the load generator and the peers (Release)..."
    Invoke-DotnetBuild (Join-Path $BenchDir 'PSTcp.Bench/PSTcp.Bench.csproj')
    $generator = Join-Path $BenchDir 'PSTcp.Bench/bin/Release/net10.0/PSTcp.Bench.dll'
    $servers = Get-BenchServers $BenchDir $ModulePath $skipped
    # The second generator (window-*-go), built where the Go peer is.
    $goLoad = $null
    $goCmd = Get-Command go -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($goCmd) {
        $loadDir = Join-Path $BenchDir 'peers/go-load'
        $r = Invoke-Child $goCmd.Source @('build', '-o', (Join-Path $loadDir 'bin/go-load'), '.') 300 $loadDir
        if ($r.ExitCode -eq 0) { $goLoad = Join-Path $loadDir 'bin/go-load' } else { $skipped['go-load'] = "go build failed: $($r.Stderr.Trim())" }
    }
    if (-not $goLoad) {
        foreach ($k in @($Scenarios.Keys)) { if ($Scenarios[$k].ContainsKey('Generator')) { $Scenarios.Remove($k) } }
        if (-not $skipped.Contains('go-load')) { $skipped['go-load'] = "'go' is not on PATH; skipping the scenarios the Go generator drives (window-16-go, window-64-go, pingpong-go)" }
    }
    foreach ($k in $skipped.Keys) { Write-Warning "${k}: $($skipped[$k])" }

    # The plan: every (repetition, scenario, server) to run, in the order they run.
    $plan = [Collections.Generic.List[object]]::new()
    for ($rep = 1; $rep -le $Repeat; $rep++) {
        foreach ($scenarioName in $Scenarios.Keys) {
            $sc = $Scenarios[$scenarioName]
            if ($sc.Once -and $rep -gt 1) { continue }
            foreach ($serverName in $sc.Servers) {
                if (-not (Test-Selected $serverName) -or -not $servers.Contains($serverName)) { continue }
                if ($servers[$serverName].ContainsKey('NeedsTarget') -and -not $servers.Contains('Go')) { continue }
                $plan.Add(@($rep, $scenarioName, $serverName))
            }
        }
    }
    if ($plan.Count -eq 0) { throw 'No server to benchmark.' }

    $n = 0
    foreach ($step in $plan) {
        $rep, $scenarioName, $serverName = $step
        $n++
        if ($script:unavailable.Contains($serverName)) { continue }
        $sc = $Scenarios[$scenarioName]
        Write-Progress -Activity 'Benchmark' -Status "$scenarioName on $serverName (run $rep of $Repeat)" -PercentComplete (100 * ($n - 1) / $plan.Count)
        $run = Invoke-BenchRun $scenarioName $sc $serverName $rep
        if ($script:unavailable.Contains($serverName)) {
            Write-Warning "${serverName}: $($script:unavailable[$serverName]); skipping it"
            continue
        }
        if (-not $run.ok) { Write-Warning "$scenarioName on $serverName (run $rep): $($run.error)" }
        if ($run.result) {
            $key, $label, $format = $sc.Metrics[0]
            $v = $run.result[$key]
            $shown = if ($null -ne $v) { ([double]$v).ToString($format, $inv) } else { 'n/a' }
            Write-Host ("  [{0}/{1}] {2,-15} {3,-14} {4} {5}" -f $n, $plan.Count, $scenarioName, $serverName, $shown, $label)
        }
        $runs.Add([pscustomobject]$run)
    }
    Write-Progress -Activity 'Benchmark' -Completed
} finally {
    foreach ($p in @($script:Children)) { Stop-Child $p 0 }
    $snapshotRoot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-bench-module-$PID"
    if (Test-Path $snapshotRoot) { Remove-Item $snapshotRoot -Recurse -Force -ErrorAction SilentlyContinue }
}
foreach ($k in $script:unavailable.Keys) { $skipped[$k] = $script:unavailable[$k] }

# ------------------------------------------------------------------ summary
$rows = @(Get-BenchRows $Scenarios $runs)
$targets = @(Get-TargetRows $runs)

$goVersion = $null
if (Get-Command go -CommandType Application -ErrorAction SilentlyContinue) { $goVersion = (& go version) -join ' ' }
$machine = [ordered]@{
    nproc       = [Environment]::ProcessorCount
    cpu_model   = Get-FirstMatch '/proc/cpuinfo' '^model name\s*:\s*(.*)$'
    os          = (Get-FirstMatch '/etc/os-release' '^PRETTY_NAME="?([^"]*)"?') ?? [Runtime.InteropServices.RuntimeInformation]::OSDescription
    kernel      = if (Test-Path /proc/sys/kernel/osrelease) { (Get-Content /proc/sys/kernel/osrelease -Raw).Trim() } else { [Environment]::OSVersion.VersionString }
    loadavg_at_start = $loadAtStart
    loadavg_at_end = if (Test-Path /proc/loadavg) { (Get-Content /proc/loadavg -Raw).Trim() } else { $null }
    memory_kb   = Get-FirstMatch '/proc/meminfo' '^MemTotal:\s*(\d+)'
    dotnet      = [Environment]::Version.ToString()
    powershell  = $PSVersionTable.PSVersion.ToString()
    go          = $goVersion
}
$stamp = (Get-Date).ToString('yyyyMMdd-HHmmss')
$null = New-Item -ItemType Directory -Force $OutDir
$report = [ordered]@{
    timestamp = (Get-Date).ToString('o')
    duration_seconds = [Math]::Round(((Get-Date) - $benchStart).TotalSeconds, 1)
    quick = [bool]$Quick
    repeat = $Repeat
    warmup_seconds = $Warmup
    module_path = $ModulePath
    machine = $machine
    skipped = $skipped
    summary = @($rows | ForEach-Object { [ordered]@{ scenario = $_.Scenario; metric = $_.Metric; median = $_.values } })
    targets = @($targets | Select-Object -ExcludeProperty values)
    runs = $runs
}
$jsonPath = Join-Path $OutDir "bench-$stamp.json"
$report | ConvertTo-Json -Depth 8 | Set-Content -Path $jsonPath -Encoding utf8NoBOM
Copy-Item $jsonPath (Join-Path $OutDir 'latest.json') -Force

Write-Host ''
Write-Host ("Echo servers on loopback - {0} x {1}, {2}; load average {3} at start; median of {4} run(s), {6} s warm-up{5}" -f $machine.nproc, $machine.cpu_model, $machine.os, (($loadAtStart -split ' ')[0..2] -join ' '), $Repeat, $(if ($Quick) { ', quick' } else { '' }), $Warmup.ToString($inv))
$rows | Select-Object Scenario, Metric, PSTcp, 'PSTcp -NoQueue', Go, Pipelines, 'PSTcp/Go', 'NoQueue/Go', 'PSTcp/Pipelines' | Format-Table -AutoSize | Out-String -Width 220 | Write-Host
Write-Host "Ratios above 1 are better for PSTcp except where lower is better (latency, ms, CPU, bytes). '!' marks a median taken over runs that failed or saw mismatches."
if ($targets.Count) {
    Write-Host ''
    Write-Host 'Targets (issues 10, 11, 14), same run:'
    $targets | Select-Object Target, PSTcp, 'PSTcp -NoQueue', Reference, Goal, Met | Format-Table -AutoSize -Wrap | Out-String -Width 220 | Write-Host
}
foreach ($k in $skipped.Keys) { Write-Host "Skipped ${k}: $($skipped[$k])" }
$failed = @($runs | Where-Object { -not $_.ok })
foreach ($f in $failed) { Write-Host "FAILED: $($f.scenario) on $($f.server) (run $($f.repetition)): $($f.error)" }
Write-Host "Raw results: $jsonPath ($([Math]::Round(((Get-Date) - $benchStart).TotalSeconds))s)"

# ------------------------------------------------------------------ PowerShell-side measurements
# bench/Measure-PowerShell.ps1 (Send-TcpLine, Receive-Job, Receive-TcpMessage, Import-Module) prints
# its own table and saves <OutDir>/latest-powershell.json. Full runs with PSTcp only.
if (-not $Scenario -and 'PSTcp' -in $Server -and (Test-Path (Join-Path $ModulePath 'PSTcp.psd1'))) {
    Write-Host ''
    $measureArgs = @{ ModulePath = $ModulePath; OutDir = $OutDir }
    if ($Quick) { $measureArgs.Repeat = 1; $measureArgs.ImportRuns = 3; $measureArgs.Lines = 200000; $measureArgs.AutoFlushLines = 20000 }
    try { & (Join-Path $BenchDir 'Measure-PowerShell.ps1') @measureArgs } catch { Write-Warning "Measure-PowerShell.ps1 failed: $_" }
    # Issue 22: per-call cost of the conversation cmdlets against Get-Date, in this process.
    Write-Host ''
    $callArgs = @{ ModulePath = $ModulePath; OutDir = $OutDir }
    if ($Quick) { $callArgs.Calls = 2000; $callArgs.Repeat = 1 }
    try { & (Join-Path $BenchDir 'Measure-CallCost.ps1') @callArgs } catch { Write-Warning "Measure-CallCost.ps1 failed: $_" }
}
if (-not $Scenario -and 'PSTcp' -in $Server) { Write-Host ''; try { & (Join-Path $BenchDir 'Measure-Handlers.ps1') -ModulePath $ModulePath -OutDir $OutDir -Repeat $(if ($Quick) { 1 } else { 3 }) } catch { Write-Warning "Measure-Handlers.ps1 failed: $_" } }

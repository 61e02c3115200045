#requires -Version 7.0
<#
.SYNOPSIS
    Benchmarks PSTcp's echo server against a Go and a System.IO.Pipelines peer on loopback.
.DESCRIPTION
    Builds the load generator (bench/PSTcp.Bench) and the peers (bench/peers) in Release, then
    for each scenario starts each server as a child process - PSTcp (a child pwsh running
    Start-TcpEchoServer), Go, Pipelines, in turn, repeated -Repeat times - drives it with the
    generator, which verifies every echoed byte, and prints one table of medians with the
    PSTcp/peer ratios. Raw results, with machine info, are saved as JSON in -OutDir.

    Every server is started fresh for each run and always killed at the end. A server that is
    not available (module not built, no `go` on PATH) is skipped with a message.
.PARAMETER ModulePath
    The built module directory (containing PSTcp.psd1). Default <repo>/out/PSTcp.
.PARAMETER OutDir
    Where the raw JSON results go. Default <repo>/out/bench.
.PARAMETER Quick
    Short runs, one repetition: a smoke test (under about two minutes).
.PARAMETER Repeat
    Runs per scenario and server; the table shows the median. Default 3 (1 with -Quick).
.PARAMETER Server
    Which servers to run: PSTcp, Go, Pipelines (default all).
.PARAMETER Scenario
    Which scenarios to run (default all): pingpong, pipelined-1, pipelined-16, pipelined-64,
    bulk, churn, idle.
.EXAMPLE
    dotnet pwsh bench/Invoke-Benchmark.ps1 -Quick
.EXAMPLE
    dotnet pwsh bench/Invoke-Benchmark.ps1 -ModulePath out/PSTcp -OutDir out/bench
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [string] $OutDir,
    [switch] $Quick,
    [ValidateRange(1, 9)]
    [int] $Repeat,
    [string[]] $Server = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines'),
    [string[]] $Scenario
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$BenchDir = $PSScriptRoot
$Root = Split-Path $BenchDir -Parent
. (Join-Path $BenchDir 'BenchTools.ps1')


$ModulePath = Resolve-UserPath $ModulePath (Join-Path $Root 'out/PSTcp')
$OutDir = Resolve-UserPath $OutDir (Join-Path $Root 'out/bench')
if (-not $Repeat) { $Repeat = if ($Quick) { 1 } else { 3 } }

# ------------------------------------------------------------------ scenarios
# Each scenario: generator arguments, and the metrics shown in the table (key in the
# generator's JSON, label, format, and whether higher is better).
$secs = if ($Quick) { '2' } else { '5' }
$Scenarios = [ordered]@{
    'pingpong'     = @{ Args = @('pingpong', '--seconds', $secs, '--line-size', '64')
                        Metrics = @(@('round_trips_per_sec', 'round trips/s', 'N0'),
                                    @('p50_us', 'p50 latency (us)', 'N1'),
                                    @('p99_us', 'p99 latency (us)', 'N1')) }
    'pipelined-1'  = @{ Args = @('pipelined', '--clients', '1', '--seconds', $secs, '--line-size', '64')
                        Metrics = @(@('lines_per_sec', 'lines/s', 'N0'), @('mb_per_sec', 'MB/s', 'N0')) }
    'pipelined-16' = @{ Args = @('pipelined', '--clients', '16', '--seconds', $secs, '--line-size', '64')
                        Metrics = @(@('lines_per_sec', 'lines/s', 'N0'), @('mb_per_sec', 'MB/s', 'N0')) }
    'pipelined-64' = @{ Args = @('pipelined', '--clients', '64', '--seconds', $secs, '--line-size', '64')
                        Metrics = @(@('lines_per_sec', 'lines/s', 'N0'), @('mb_per_sec', 'MB/s', 'N0')) }
    'bulk'         = @{ Args = @('bulk', '--clients', '1', '--line-size', '1024', '--bytes', "$(256MB)",
                                 '--seconds', $(if ($Quick) { '30' } else { '60' }))
                        Metrics = @(,@('mb_per_sec', 'MB/s', 'N0')) }
    'churn'        = @{ Args = @('churn', '--clients', '4', '--seconds', $secs, '--line-size', '64')
                        Metrics = @(,@('connections_per_sec', 'connections/s', 'N0')) }
    'idle'         = @{ Args = @('idle', '--clients', '1000', '--seconds', '1', '--line-size', '64')
                        Metrics = @(,@('bytes_per_connection', 'server bytes/connection', 'N0'))
                        NeedsPid = $true }
}
# -File passes 'a,b' as one string: accept comma-separated lists too.
$Server = @($Server -split ',' | ForEach-Object Trim | Where-Object { $_ })
foreach ($s in $Server) { if ($s -notin 'PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines') { throw "Unknown -Server '$s' (PSTcp, PSTcpNoQueue, Go, Pipelines)" } }
if ($Scenario) {
    $Scenario = @($Scenario -split ',' | ForEach-Object Trim | Where-Object { $_ })
    foreach ($s in $Scenario) { if ($s -notin $Scenarios.Keys) { throw "Unknown -Scenario '$s' ($($Scenarios.Keys -join ', '))" } }
}
if ($Scenario) {
    foreach ($k in @($Scenarios.Keys)) { if ($k -notin $Scenario) { $Scenarios.Remove($k) } }
}

# ------------------------------------------------------------------ processes




# A running server: its process, its port, and the tasks draining its output.
function Start-EchoServer([hashtable] $Spec) {
    $p = Start-Child $Spec.FileName $Spec.Arguments
    $stderr = $p.StandardError.ReadToEndAsync()
    # The port is the first line that is a number (a module may print a warning before it).
    $deadline = [DateTime]::UtcNow.AddSeconds($Spec.StartTimeoutSeconds)
    $port = 0
    $seen = [Collections.Generic.List[string]]::new()
    for ($i = 0; $i -lt 200; $i++) {
        $left = [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($left -le 0) { break }
        $line = $p.StandardOutput.ReadLineAsync()
        if (-not $line.Wait($left) -or $null -eq $line.Result) { break }
        if ([int]::TryParse($line.Result.Trim(), [ref] $port) -and $port -gt 0) {
            $stdout = $p.StandardOutput.ReadToEndAsync() # keep draining whatever else it prints
            return [pscustomobject]@{ Process = $p; Port = $port; Stdout = $stdout; Stderr = $stderr }
        }
        $seen.Add($line.Result)
    }
    Stop-Child $p 0
    $errText = if ($stderr.Wait(2000)) { $stderr.Result } else { '' }
    throw "$($Spec.Name) did not report its port within $($Spec.StartTimeoutSeconds)s. stdout: $($seen -join ' | ') stderr: $errText"
}

function Invoke-DotnetBuild([string] $Project) {
    $r = Invoke-Child 'dotnet' @('build', $Project, '-c', 'Release', '--nologo', '-v', 'quiet', '-clp:NoSummary') 300
    if ($r.ExitCode -ne 0) { throw "dotnet build $Project failed:`n$($r.Stdout)`n$($r.Stderr)" }
}

# ------------------------------------------------------------------ main
$runs = [Collections.Generic.List[object]]::new()
$skipped = [ordered]@{}
$benchStart = Get-Date
# Other work on the machine skews every figure: record the load when we start.
$loadAtStart = if (Test-Path /proc/loadavg) { (Get-Content /proc/loadavg -Raw).Trim() } else { $null }
try {
    Write-Host "Building the load generator and the peers (Release)..."
    Invoke-DotnetBuild (Join-Path $BenchDir 'PSTcp.Bench/PSTcp.Bench.csproj')
    $generator = Join-Path $BenchDir 'PSTcp.Bench/bin/Release/net10.0/PSTcp.Bench.dll'

    $servers = [ordered]@{}
    if ('PSTcp' -in $Server -or 'PSTcpNoQueue' -in $Server) {
        $manifest = Join-Path $ModulePath 'PSTcp.psd1'
        if (Test-Path $manifest) {
            # Run from a snapshot, so a rebuild of out/PSTcp during the benchmark cannot break it.
            $snapshot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-bench-module-$PID/PSTcp"
            if (Test-Path $snapshot) { Remove-Item $snapshot -Recurse -Force }
            $null = New-Item -ItemType Directory -Force $snapshot
            Copy-Item (Join-Path $ModulePath '*') $snapshot -Recurse
            $manifest = Join-Path $snapshot 'PSTcp.psd1'
            # The child pwsh is this very PowerShell: pwsh itself, or dotnet running pwsh.dll.
            $pwshArgs = @()
            $pwshPath = [Environment]::ProcessPath
            if ([IO.Path]::GetFileNameWithoutExtension($pwshPath) -eq 'dotnet') {
                $pwshArgs = @([Environment]::GetCommandLineArgs()[0])
            }
            $quoted = $manifest.Replace("'", "''")
            # PSTcp as users run it (every line queued for consumers, the default), and as a
            # pure echo (-NoQueue), which does what the peers do.
            $variants = [ordered]@{
                PSTcp        = '-QueueCapacity 10000 -QueueFullMode DropOldest'
                PSTcpNoQueue = '-NoQueue'
            }
            foreach ($variant in $variants.Keys) {
                if ($variant -notin $Server) { continue }
                $command = "Import-Module '$quoted'; " +
                    "`$s = Start-TcpEchoServer -Port 0 $($variants[$variant]); " +
                    '[Console]::Out.WriteLine($s.Port); [Console]::Out.Flush(); ' +
                    '[Console]::In.ReadLine() | Out-Null; $s | Stop-TcpServer'
                $servers[$variant] = @{ Name = $variant; FileName = $pwshPath; StartTimeoutSeconds = 60
                                        Arguments = $pwshArgs + @('-NoProfile', '-NonInteractive', '-Command', $command) }
            }
        } else {
            $skipped['PSTcp'] = "module not found at $manifest (build it with ./build.ps1); benchmarking the peers only"
        }
    }
    if ('Go' -in $Server) {
        $go = Get-Command go -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $go) {
            $skipped['Go'] = "'go' is not on PATH (e.g. apt-get install golang-go); skipping the Go peer"
        } else {
            $goDir = Join-Path $BenchDir 'peers/go-echo'
            $goBin = Join-Path $goDir 'bin/go-echo'
            $r = Invoke-Child $go.Source @('build', '-o', $goBin, '.') 300 $goDir
            if ($r.ExitCode -ne 0) {
                $skipped['Go'] = "go build failed, skipping the Go peer: $($r.Stderr.Trim())"
            } else {
                $servers['Go'] = @{ Name = 'Go'; FileName = $goBin; StartTimeoutSeconds = 15
                                   Arguments = @('-addr', '127.0.0.1:0', '-exit-on-stdin-eof') }
            }
        }
    }
    if ('Pipelines' -in $Server) {
        Invoke-DotnetBuild (Join-Path $BenchDir 'peers/PipelinesEcho/PipelinesEcho.csproj')
        $servers['Pipelines'] = @{ Name = 'Pipelines'; FileName = 'dotnet'; StartTimeoutSeconds = 15
                                  Arguments = @((Join-Path $BenchDir 'peers/PipelinesEcho/bin/Release/net10.0/PipelinesEcho.dll'),
                                                '--port', '0', '--exit-on-stdin-eof') }
    }
    foreach ($k in $skipped.Keys) { Write-Warning "${k}: $($skipped[$k])" }
    if ($servers.Count -eq 0) { throw 'No server to benchmark.' }

    $total = $Repeat * $Scenarios.Count * $servers.Count
    $n = 0
    for ($rep = 1; $rep -le $Repeat; $rep++) {
        foreach ($scenarioName in $Scenarios.Keys) {
            $sc = $Scenarios[$scenarioName]
            foreach ($serverName in $servers.Keys) {
                $n++
                Write-Progress -Activity 'Benchmark' -Status "$scenarioName on $serverName (run $rep of $Repeat)" -PercentComplete (100 * ($n - 1) / $total)
                $run = [ordered]@{ scenario = $scenarioName; server = $serverName; repetition = $rep
                                   ok = $false; exit_code = $null; result = $null; error = $null }
                $srv = $null
                try {
                    $srv = Start-EchoServer $servers[$serverName]
                    $genArgs = @($generator) + $sc.Args + @('--host', '127.0.0.1', '--port', "$($srv.Port)")
                    if ($sc.ContainsKey('NeedsPid')) { $genArgs += @('--pid', "$($srv.Process.Id)") }
                    $r = Invoke-Child 'dotnet' $genArgs 150
                    $run.exit_code = $r.ExitCode
                    $json = ($r.Stdout -split "`n" | Where-Object { $_.TrimStart().StartsWith('{') } | Select-Object -Last 1)
                    if ($json) { $run.result = $json | ConvertFrom-Json -AsHashtable }
                    if ($r.TimedOut) { $run.error = 'generator timed out' }
                    elseif (-not $json) { $run.error = "generator printed no result: $($r.Stderr.Trim())" }
                    elseif (-not $run.result['ok']) { $run.error = ($run.result['first_errors'] | Select-Object -First 2) -join '; ' }
                    $run.ok = $r.ExitCode -eq 0 -and $null -ne $run.result -and [bool]$run.result['ok']
                    if ($srv.Process.HasExited) {
                        $run.ok = $false
                        $run.error = "server exited during the run (code $($srv.Process.ExitCode))"
                    }
                } catch {
                    $run.error = "$_"
                } finally {
                    if ($srv) {
                        Stop-Child $srv.Process
                        if (-not $run.ok -and $srv.Stderr.Wait(1000) -and $srv.Stderr.Result) {
                            $run.server_stderr = $srv.Stderr.Result.Substring(0, [Math]::Min(2000, $srv.Stderr.Result.Length))
                        }
                    }
                }
                if (-not $run.ok) { Write-Warning "$scenarioName on $serverName (run $rep): $($run.error)" }
                elseif ($run.result) {
                    $key, $label, $format = $sc.Metrics[0]
                    $v = $run.result[$key]
                    $shown = if ($null -ne $v) { ([double]$v).ToString($format, [Globalization.CultureInfo]::InvariantCulture) } else { 'n/a' }
                    Write-Host ("  [{0}/{1}] {2,-13} {3,-10} {4} {5}" -f $n, $total, $scenarioName, $serverName, $shown, $label)
                }
                $runs.Add([pscustomobject]$run)
            }
        }
    }
    Write-Progress -Activity 'Benchmark' -Completed
} finally {
    foreach ($p in @($script:Children)) { Stop-Child $p 0 }
    $snapshotRoot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-bench-module-$PID"
    if (Test-Path $snapshotRoot) { Remove-Item $snapshotRoot -Recurse -Force -ErrorAction SilentlyContinue }
}

# ------------------------------------------------------------------ summary

$names = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines')
$rows = [Collections.Generic.List[object]]::new()
foreach ($scenarioName in $Scenarios.Keys) {
    foreach ($metric in $Scenarios[$scenarioName].Metrics) {
        $key, $label, $format = $metric
        $cells = @{}; $values = @{}
        foreach ($name in $names) {
            $mine = @($runs | Where-Object { $_.scenario -eq $scenarioName -and $_.server -eq $name })
            if ($mine.Count -eq 0) { $cells[$name] = '-'; $values[$name] = $null; continue }
            $good = @($mine | Where-Object { $_.ok -and $null -ne $_.result -and $null -ne $_.result[$key] })
            $use = if ($good.Count) { $good } else { @($mine | Where-Object { $null -ne $_.result -and $null -ne $_.result[$key] }) }
            $median = Get-Median @($use | ForEach-Object { [double]$_.result[$key] })
            $values[$name] = $median
            $cell = if ($null -eq $median) { 'n/a' } else { $median.ToString($format, [Globalization.CultureInfo]::InvariantCulture) }
            if ($good.Count -lt $mine.Count) { $cell += ' !' } # some run failed or saw mismatches
            $cells[$name] = $cell
        }
        $ratio = {
            param($a, $b)
            if ($null -eq $a -or $null -eq $b -or $b -eq 0) { '-' } else { ($a / $b).ToString('0.00', [Globalization.CultureInfo]::InvariantCulture) }
        }
        $rows.Add([pscustomobject][ordered]@{
            Scenario          = $scenarioName
            Metric            = $label
            PSTcp             = $cells['PSTcp']
            'PSTcp -NoQueue'  = $cells['PSTcpNoQueue']
            Go                = $cells['Go']
            Pipelines         = $cells['Pipelines']
            'PSTcp/Go'        = & $ratio $values['PSTcp'] $values['Go']
            'PSTcp/Pipelines' = & $ratio $values['PSTcp'] $values['Pipelines']
            'NoQueue/Go'      = & $ratio $values['PSTcpNoQueue'] $values['Go']
            values            = $values
        })
    }
}

# ------------------------------------------------------------------ raw results
$goVersion = $null
if (Get-Command go -CommandType Application -ErrorAction SilentlyContinue) { $goVersion = (& go version) -join ' ' }
$machine = [ordered]@{
    nproc       = [Environment]::ProcessorCount
    cpu_model   = Get-FirstMatch '/proc/cpuinfo' '^model name\s*:\s*(.*)$'
    os          = (Get-FirstMatch '/etc/os-release' '^PRETTY_NAME="?([^"]*)"?') ?? [Runtime.InteropServices.RuntimeInformation]::OSDescription
    kernel      = if (Test-Path /proc/sys/kernel/osrelease) { (Get-Content /proc/sys/kernel/osrelease -Raw).Trim() } else { [Environment]::OSVersion.VersionString }
    loadavg_at_start = $loadAtStart
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
    module_path = $ModulePath
    machine = $machine
    skipped = $skipped
    summary = @($rows | ForEach-Object { [ordered]@{ scenario = $_.Scenario; metric = $_.Metric; median = $_.values } })
    runs = $runs
}
$jsonPath = Join-Path $OutDir "bench-$stamp.json"
$report | ConvertTo-Json -Depth 8 | Set-Content -Path $jsonPath -Encoding utf8NoBOM
Copy-Item $jsonPath (Join-Path $OutDir 'latest.json') -Force

Write-Host ''
Write-Host ("Echo servers on loopback - {0} x {1}, {2}; median of {3} run(s){4}" -f $machine.nproc, $machine.cpu_model, $machine.os, $Repeat, $(if ($Quick) { ', quick' } else { '' }))
$rows | Select-Object Scenario, Metric, PSTcp, 'PSTcp -NoQueue', Go, Pipelines, 'PSTcp/Go', 'NoQueue/Go', 'PSTcp/Pipelines' | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host "Ratios above 1 are better for PSTcp except for latency and bytes/connection (lower is better). '!' marks a median taken over runs that failed or saw mismatches."
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
    if ($Quick) { $measureArgs.Repeat = 1; $measureArgs.ImportRuns = 3 }
    try { & (Join-Path $BenchDir 'Measure-PowerShell.ps1') @measureArgs } catch { Write-Warning "Measure-PowerShell.ps1 failed: $_" }
}
if (-not $Scenario -and 'PSTcp' -in $Server) { Write-Host ''; try { & (Join-Path $BenchDir 'Measure-Handlers.ps1') -ModulePath $ModulePath -OutDir $OutDir -Repeat $(if ($Quick) { 1 } else { 3 }) } catch { Write-Warning "Measure-Handlers.ps1 failed: $_" } }

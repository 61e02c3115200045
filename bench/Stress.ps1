#requires -Version 7.0
<#
.SYNOPSIS
    Stress test: 10,000 concurrent connections and 1,000,000 lossless messages against one
    PSTcp echo server.
.DESCRIPTION
    Starts one echo server (Start-TcpEchoServer -Port 0 -MaxConnections 20000 -QueueFullMode Wait
    -QueueCapacity 10000) in this pwsh process, so its memory is this process's, and a consumer
    job on its queue. A C# load driver (bench/PSTcp.Stress, its own process) then
      1. opens and holds -Connections connections (the server's memory is read before and with
         them idle; the difference per connection is printed),
      2. times fresh clients (connect, one line, its echo) while they are held,
      3. pushes -Messages lines spread over the held connections (or over the first
         -PushConnections of them), verifying every echoed byte, while this process drains the
         consumer job with Receive-Job in a loop and more fresh clients are timed,
      4. closes everything; the server's memory is read again.
    Exit code 1 if any message was lost (sent - consumed or sent - echoed is not 0), the server
    dropped any, fewer than -Connections were held, or anything timed out.

    Each process needs an open-file limit above the connection count. .NET raises a process's
    soft limit to its hard limit at startup; if that is below 25,000 and a shell may raise it
    (bash -c 'ulimit -n 65536' succeeds, i.e. root with CAP_SYS_RESOURCE), the script
    re-launches itself under `bash -c 'ulimit -n 65536 && exec pwsh ...'`; the driver is always
    started that way. The output says what happened; fewer files than connections + 1,000 fails.
.PARAMETER ModulePath
    The built module directory (containing PSTcp.psd1). Default <repo>/out/PSTcp.
.EXAMPLE
    dotnet pwsh ./build.ps1 Stress
.EXAMPLE
    dotnet pwsh bench/Stress.ps1 -ModulePath out/PSTcp -Connections 2000 -Messages 100000
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [ValidateRange(1, 30000)]
    [int] $Connections = 10000,
    [ValidateRange(1, 10000000)]
    [int] $Messages = 1000000,
    # Push over the first N held connections only; 0 spreads the messages over all of them.
    [ValidateRange(0, 30000)]
    [int] $PushConnections = 0,
    # Fresh clients timed while the connections are idle, and again during the push.
    [ValidateRange(1, 100)]
    [int] $Probes = 10,
    # Bound of each phase (connecting, pushing and draining, closing).
    [ValidateRange(10, 600)]
    [int] $TimeoutSeconds = 180
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = Split-Path $PSScriptRoot -Parent
. (Join-Path $PSScriptRoot 'BenchTools.ps1')
$started = [Diagnostics.Stopwatch]::StartNew()
$inv = [Globalization.CultureInfo]::InvariantCulture

$ModulePath = Resolve-UserPath $ModulePath (Join-Path $Root 'out/PSTcp')

# ------------------------------------------------------------------ open-file limit
function Get-OpenFileLimit {
    $line = Get-Content /proc/self/limits -ErrorAction SilentlyContinue | Where-Object { $_ -like 'Max open files*' } | Select-Object -First 1
    if (-not $line) { return $null }
    $f = -split $line.Substring('Max open files'.Length)
    $parse = { param($v) if ($v -eq 'unlimited') { [long]::MaxValue } else { [long]$v } }
    [pscustomobject]@{ Soft = & $parse $f[0]; Hard = & $parse $f[1] }
}


$wanted = 25000
$needed = $Connections + 1000
$limit = Get-OpenFileLimit
$limitNote = $null
if ($limit -and $limit.Soft -lt $wanted -and -not $env:PSTCP_STRESS_RELAUNCHED) {
    # .NET already raises its soft limit to the hard limit at startup; going further needs a
    # higher hard limit, which a shell can set only with CAP_SYS_RESOURCE. Ask a shell first.
    $null = & bash -c 'ulimit -n 65536' 2>&1
    $target = if ($LASTEXITCODE -eq 0) { 65536 } else { [Math]::Min(65536, $limit.Hard) }
    if ($target -gt $limit.Soft) {
        # setrlimit isn't reachable portably from PowerShell: re-launch this script under a
        # shell that raises the soft limit first, and pass its exit code on.
        $env:PSTCP_STRESS_RELAUNCHED = "$($limit.Soft)"
        $pwsh = @(Get-PwshCommand)
        $argList = @($pwsh) + @('-NoProfile', '-NonInteractive', '-File', $PSCommandPath, '-ModulePath', $ModulePath,
            '-Connections', $Connections, '-Messages', $Messages, '-PushConnections', $PushConnections,
            '-Probes', $Probes, '-TimeoutSeconds', $TimeoutSeconds)
        Write-Host "Open-file limit of this pwsh is $($limit.Soft) (hard $($limit.Hard)); re-launching under: bash -c 'ulimit -n $target && exec pwsh ...'"
        & bash -c 'n="$1"; shift; ulimit -n "$n" && exec "$@"' bash $target @argList
        exit $LASTEXITCODE
    }
    $limitNote = "not raised: .NET had raised the soft limit to the hard limit, $($limit.Hard), and bash -c 'ulimit -n 65536' is not permitted here (needs CAP_SYS_RESOURCE)"
}
$limit = Get-OpenFileLimit
if ($env:PSTCP_STRESS_RELAUNCHED) {
    $limitNote = "raised from $($env:PSTCP_STRESS_RELAUNCHED) by re-launching under bash -c 'ulimit -n $($limit.Soft)'"
} elseif (-not $limitNote) {
    $limitNote = 'already high enough, not changed'
}
if ($limit -and $limit.Soft -lt $needed) {
    Write-Host "FAIL: this process may open only $($limit.Soft) files (hard limit $($limit.Hard)); $Connections connections need about $needed."
    exit 1
}

# ------------------------------------------------------------------ helpers
function Format-N($Value, [string] $Format = 'N0') {
    if ($null -eq $Value) { return 'n/a' }
    ([double]$Value).ToString($Format, $inv)
}

function Get-ServerMemory {
    # A full collection first, so the figures are what the process holds, not garbage.
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
    $status = Get-Content "/proc/$PID/status" -ErrorAction SilentlyContinue
    $rssKb = ($status | Where-Object { $_ -like 'VmRSS:*' } | ForEach-Object { [long](-split $_)[1] }) | Select-Object -First 1
    $p = Get-Process -Id $PID
    [pscustomobject]@{
        RssBytes     = if ($rssKb) { $rssKb * 1KB } else { $p.WorkingSet64 }
        PrivateBytes = $p.PrivateMemorySize64
        GcHeapBytes  = [GC]::GetTotalMemory($false)
    }
}

$script:pendingLine = $null
$script:driverEvents = [Collections.Generic.List[object]]::new()

# Returns the driver's next output line as a hashtable, or $null if none within TimeoutMs.
function Read-DriverEvent([Diagnostics.Process] $Process, [int] $TimeoutMs) {
    if (-not $script:pendingLine) { $script:pendingLine = $Process.StandardOutput.ReadLineAsync() }
    if (-not $script:pendingLine.Wait($TimeoutMs)) { return $null }
    $line = $script:pendingLine.Result
    $script:pendingLine = $null
    if ($null -eq $line) { throw "The load driver ended unexpectedly (exit code $(if ($Process.HasExited) { $Process.ExitCode } else { '?' }))." }
    $e = $line | ConvertFrom-Json -AsHashtable
    $script:driverEvents.Add($e)
    if ($e['event'] -eq 'failed') { throw "The load driver failed: $($e['error'])" }
    $e
}

function Wait-DriverEvent([Diagnostics.Process] $Process, [string] $Name, [int] $TimeoutSeconds) {
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ([DateTime]::UtcNow -lt $deadline) {
        $e = Read-DriverEvent $Process 200
        if ($e -and $e['event'] -eq $Name) { return $e }
    }
    throw "No '$Name' from the load driver within $TimeoutSeconds s."
}

$script:consumed = 0L
$script:jobErrors = [Collections.Generic.List[object]]::new()
# Takes what the consumer job has; returns how many messages that was.
function Receive-Consumed($Job) {
    $errs = $null; $warns = $null
    $got = @(Receive-Job $Job -ErrorAction SilentlyContinue -ErrorVariable errs -WarningAction SilentlyContinue -WarningVariable warns)
    foreach ($e in @($errs) + @($warns)) { if ($e -and $script:jobErrors.Count -lt 5) { $script:jobErrors.Add("$e") } }
    $script:consumed += $got.Count
    $got.Count
}

# ------------------------------------------------------------------ run
$server = $null; $job = $null; $driver = $null
$failures = [Collections.Generic.List[string]]::new()
$result = [ordered]@{}
try {
    Write-Host "Building the load driver (bench/PSTcp.Stress)..."
    $project = Join-Path $Root 'bench/PSTcp.Stress/PSTcp.Stress.csproj'
    $buildOut = & dotnet build $project -c Release --nologo -v quiet -clp:NoSummary 2>&1
    if ($LASTEXITCODE -ne 0) { $buildOut | Write-Host; throw "Building the load driver failed (exit code $LASTEXITCODE)." }
    $driverDll = Join-Path $Root 'bench/PSTcp.Stress/bin/Release/net10.0/PSTcp.Stress.dll'

    Import-Module (Join-Path $ModulePath 'PSTcp.psd1') -Force
    $memBefore = Get-ServerMemory
    $server = Start-TcpEchoServer -Port 0 -MaxConnections 20000 -QueueFullMode Wait -QueueCapacity 10000 -Name Stress
    $job = $server | Receive-TcpMessage -AsJob -Name StressConsumer
    Write-Host ("Server on 127.0.0.1:{0} in pwsh process {1}; open-file limit {2} (hard {3}): {4}." -f $server.Port, $PID, $limit.Soft, $limit.Hard, $limitNote)

    # The driver raises its own limit the same way; it reports what it got.
    $psi = [Diagnostics.ProcessStartInfo]::new('bash')
    foreach ($a in @('-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec dotnet "$@"', 'bash',
            $driverDll, 'hold', '--port', "$($server.Port)", '--connections', "$Connections", '--messages', "$Messages",
            '--push-connections', "$PushConnections", '--load-probes', "$Probes", '--timeout-seconds', "$TimeoutSeconds")) {
        $psi.ArgumentList.Add($a)
    }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $driver = [Diagnostics.Process]::Start($psi)
    $driverStderr = $driver.StandardError.ReadToEndAsync()

    # 1. Connections, held idle.
    $connected = Wait-DriverEvent $driver 'connected' ([Math]::Min($TimeoutSeconds, 120))
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ($server.ConnectionCount -lt $connected['connections'] -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
    Start-Sleep -Milliseconds 1000
    $held = $server.ConnectionCount
    $memIdle = Get-ServerMemory
    Write-Host ("Driver opened {0:N0} connections in {1} s ({2} failed; its open-file limit {3}); the server holds {4:N0}." -f `
        $connected['connections'], $connected['seconds'], $connected['failed'], $connected['open_file_limit'], $held)
    if ($held -lt $Connections) { $failures.Add("only $held of $Connections connections held") }

    # 2. A new client while they are held.
    $driver.StandardInput.WriteLine("probe $Probes"); $driver.StandardInput.Flush()
    $idleProbe = Wait-DriverEvent $driver 'probe' 60
    Write-Host ("New client while {0:N0} are held: connect + first echo p50 {1} ms, max {2} ms ({3} clients)." -f $held, $idleProbe['p50_ms'], $idleProbe['max_ms'], $idleProbe['probes'])
    if ($idleProbe['failed'] -gt 0) { $failures.Add("$($idleProbe['failed']) idle probe(s) failed: $($idleProbe['first_errors'] -join '; ')") }

    # 3. The push, drained by the consumer job.
    $probeLines = [long]($idleProbe['probes'] - $idleProbe['failed'])
    Write-Host ("Pushing {0:N0} messages over {1:N0} connections (Wait mode), draining with Receive-Job..." -f $Messages, $(if ($PushConnections) { [Math]::Min($PushConnections, $held) } else { $held }))
    $pushClock = [Diagnostics.Stopwatch]::StartNew()
    $driver.StandardInput.WriteLine('push'); $driver.StandardInput.Flush()
    $pushed = $null
    $lastProgress = [Diagnostics.Stopwatch]::StartNew()
    $drainSeconds = $null
    $pushTarget = [long]$Messages + $probeLines
    while ($pushClock.Elapsed.TotalSeconds -lt $TimeoutSeconds) {
        if ((Receive-Consumed $job) -gt 0) { $lastProgress.Restart() }
        # Every pushed line consumed (the few probe lines of the push phase may be among them).
        if ($null -eq $drainSeconds -and $script:consumed -ge $pushTarget) { $drainSeconds = $pushClock.Elapsed.TotalSeconds }
        if (-not $pushed) {
            $e = Read-DriverEvent $driver 0
            if ($e -and $e['event'] -eq 'pushed') {
                $pushed = $e
                $probeLines += [long]($e['probe_samples_ms'].Count)
            }
        }
        if ($pushed) {
            $expected = [long]$pushed['lines_sent'] + $probeLines
            if ($script:consumed -ge $expected) { break }
            # Nothing more will come: don't wait out the whole timeout.
            if ($lastProgress.Elapsed.TotalSeconds -gt 10) { break }
        }
        if ($job.Output.Count -eq 0) { Start-Sleep -Milliseconds 2 }
    }
    if (-not $pushed) { $failures.Add("the push did not finish within $TimeoutSeconds s") }
    Start-Sleep -Milliseconds 200
    $null = Receive-Consumed $job   # anything late shows up as an excess, not hidden
    $memAfter = Get-ServerMemory

    # 4. Close.
    $driver.StandardInput.WriteLine('close'); $driver.StandardInput.Flush()
    $closed = Wait-DriverEvent $driver 'closed' 60
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ($server.ConnectionCount -gt 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
    Start-Sleep -Milliseconds 500
    $memClosed = Get-ServerMemory

    # ------------------------------------------------------------------ report
    $sentPush = if ($pushed) { [long]$pushed['lines_sent'] } else { 0L }
    $echoPush = if ($pushed) { [long]$pushed['lines_echoed'] } else { 0L }
    $sent = $sentPush + $probeLines
    $echoed = $echoPush + $probeLines
    $lostConsumed = $sent - $script:consumed
    $lostEcho = $sent - $echoed
    $perConn = if ($held -gt 0) { ($memIdle.RssBytes - $memBefore.RssBytes) / $held } else { $null }
    $perConnGc = if ($held -gt 0) { ($memIdle.GcHeapBytes - $memBefore.GcHeapBytes) / $held } else { $null }

    if ($pushed -and -not $pushed['ok']) { $failures.Add("driver: $($pushed['errors']) error(s), $($pushed['mismatches']) mismatch(es): $($pushed['first_errors'] -join '; ') $($pushed['probe_errors'] -join '; ')") }
    if ($sentPush -ne $Messages) { $failures.Add("sent $sentPush of $Messages messages") }
    if ($lostConsumed -ne 0) { $failures.Add("sent - consumed = $lostConsumed") }
    if ($lostEcho -ne 0) { $failures.Add("sent - echoed = $lostEcho") }
    if ($server.MessagesDropped -ne 0) { $failures.Add("the server dropped $($server.MessagesDropped) message(s)") }
    if ($script:jobErrors.Count) { $failures.Add("consumer job: $($script:jobErrors -join '; ')") }

    $mb = { param($b) Format-N ($b / 1MB) 'N1' }
    Write-Host ''
    Write-Host 'PSTcp stress'
    Write-Host ("  connections held          {0:N0} (asked {1:N0}; driver opened {2:N0} in {3} s)" -f $held, $Connections, $connected['connections'], $connected['seconds'])
    Write-Host ("  open-file limit           server {0}, driver {1}; server's {2}" -f $limit.Soft, $connected['open_file_limit'], $limitNote)
    Write-Host ("  server memory (VmRSS)     before {0} MB, {1:N0} idle {2} MB, after push {3} MB, after close {4} MB" -f (& $mb $memBefore.RssBytes), $held, (& $mb $memIdle.RssBytes), (& $mb $memAfter.RssBytes), (& $mb $memClosed.RssBytes))
    Write-Host ("  GC heap                   before {0} MB, idle {1} MB, after push {2} MB, after close {3} MB" -f (& $mb $memBefore.GcHeapBytes), (& $mb $memIdle.GcHeapBytes), (& $mb $memAfter.GcHeapBytes), (& $mb $memClosed.GcHeapBytes))
    Write-Host ("  per idle connection       {0} bytes RSS ({1} bytes of GC heap)" -f (Format-N $perConn), (Format-N $perConnGc))
    Write-Host ("  new client, idle          connect + first echo p50 {0} ms, max {1} ms" -f $idleProbe['p50_ms'], $idleProbe['max_ms'])
    if ($pushed) {
        Write-Host ("  new client, during push   connect + first echo p50 {0} ms, max {1} ms ({2} clients)" -f $pushed['probe_p50_ms'], $pushed['probe_max_ms'], $pushed['probe_samples_ms'].Count)
    }
    Write-Host ("  messages sent             {0:N0} (+ {1} probe lines)" -f $sentPush, $probeLines)
    Write-Host ("  messages echoed           {0:N0} (+ {1}), every byte verified by the driver" -f $echoPush, $probeLines)
    Write-Host ("  messages consumed         {0:N0} (Receive-Job on the consumer job, probe lines included)" -f $script:consumed)
    Write-Host ("  lost                      sent - consumed = {0}, sent - echoed = {1}; server MessagesReceived {2:N0}, MessagesDropped {3}" -f $lostConsumed, $lostEcho, $server.MessagesReceived, $server.MessagesDropped)
    $rate = if ($drainSeconds) { $Messages / $drainSeconds } else { $null }
    Write-Host ("  elapsed                   push until all consumed {0} s ({1} msg/s); driver's echoes done in {2} s; whole run {3} s" -f (Format-N $drainSeconds 'N2'), (Format-N $rate), $(if ($pushed) { $pushed['seconds'] } else { 'n/a' }), (Format-N $started.Elapsed.TotalSeconds 'N1'))

    $result = [ordered]@{
        timestamp = (Get-Date).ToString('o'); connections_asked = $Connections; connections_held = $held
        open_file_limit = [ordered]@{ server = $limit.Soft; server_hard = $limit.Hard; driver = $connected['open_file_limit']; note = $limitNote }
        memory = [ordered]@{ before = $memBefore; idle = $memIdle; after_push = $memAfter; after_close = $memClosed; rss_bytes_per_idle_connection = $perConn; gc_bytes_per_idle_connection = $perConnGc }
        probe_idle = $idleProbe; pushed = $pushed
        messages = [ordered]@{ sent = $sentPush; echoed = $echoPush; probe_lines = $probeLines; consumed = $script:consumed; lost_consumed = $lostConsumed; lost_echoed = $lostEcho; server_received = $server.MessagesReceived; server_dropped = $server.MessagesDropped }
        drain_seconds = $drainSeconds; total_seconds = $started.Elapsed.TotalSeconds; loadavg = (Get-Content /proc/loadavg -ErrorAction SilentlyContinue)
        failures = @($failures)
    }
} catch {
    $failures.Add("$_")
} finally {
    if ($driver) {
        try { if (-not $driver.HasExited) { $driver.StandardInput.Close(); if (-not $driver.WaitForExit(5000)) { $driver.Kill($true) } } } catch { }
        if ($failures.Count -and $driverStderr -and $driverStderr.Wait(1000) -and $driverStderr.Result) { Write-Host "driver stderr: $($driverStderr.Result.Trim())" }
        $driver.Dispose()
    }
    if ($job) { $job | Stop-Job -ErrorAction SilentlyContinue; $job | Remove-Job -Force -ErrorAction SilentlyContinue }
    if ($server) { $server | Stop-TcpServer -ErrorAction SilentlyContinue }
}

if ($result.Count) {
    try {
        $outDir = Join-Path $Root 'out/stress'
        $null = New-Item -ItemType Directory -Force $outDir
        $result | ConvertTo-Json -Depth 6 | Set-Content (Join-Path $outDir 'latest-stress.json') -Encoding utf8NoBOM
    } catch { Write-Host "Could not save out/stress/latest-stress.json: $_" }
}
if ($failures.Count) {
    foreach ($f in $failures) { Write-Host "FAIL: $f" }
    exit 1
}
Write-Host 'Stress: passed (nothing lost, every connection held).'
exit 0

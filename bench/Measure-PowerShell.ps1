#requires -Version 7.0
<#
.SYNOPSIS
    Measures PSTcp from PowerShell's side: Send-TcpLine, Receive-Job on a consumer job,
    Receive-TcpMessage and Import-Module, against plain PowerShell baselines and targets.
.DESCRIPTION
    1. Send: 1,000,000 short lines ("line 123456") to a sink (a C# process that reads, discards
       and counts bytes and lines; bench/PSTcp.Stress sink) with
         Send-TcpLine -Connection $c -Line $array     and     $array | Send-TcpLine -Connection $c
       against a PowerShell foreach loop calling $writer.WriteLine($line) on a StreamWriter over
       a TcpClient stream, (a) with AutoFlush = $true (-AutoFlushLines lines, 100,000 by default,
       the rate scaled from those) and (b) with AutoFlush off and one Flush at the end; for
       context also (b) dot-sourced (a script's top level) and through ForEach-Object. Every run
       is timed from the first line until the sink has counted every byte (the sender closes
       its side; the sink reports at end of stream). Median of -Repeat runs.
    2. Receive-Job: a consumer job on a server with the default queue (10,000, Wait mode) is
       drained with Receive-Job in a loop while the C# generator sends 1,000,000 lines
       (16 clients) and verifies their echoes; timed from the start of the generator to the
       1,000,000th message received. Also: Receive-Job when the job already holds 100,000 and
       200,000 messages (queued first with -QueueCapacity 1000000, then taken by the job), which
       shows how Receive-Job's cost grows with how much the job holds (quadratically:
       PSDataCollection.ReadAll removes items from the front of a List one by one).
    3. Receive-TcpMessage -Server $s -Count 1000000 on a queue filled first (-QueueCapacity
       1000000), into $null and into a variable.
    4. Test-TcpEndpoint over 1,000 loopback ports, 500 listening and 500 closed (skipped with a
       message while the cmdlet is absent); Send-TcpMessage -Message $array beside
       Send-TcpLine -Line $array in 1 (likewise).
    5. Import-Module: median of -ImportRuns fresh `pwsh -NoProfile -Command "Import-Module ..."`
       runs minus the median of bare `pwsh -NoProfile -Command exit` runs, and
       Measure-Command { Import-Module ... } inside fresh processes.
    Prints one table with the targets, saves JSON as <OutDir>/powershell-<stamp>.json and
    latest-powershell.json.
.PARAMETER ModulePath
    The built module directory (containing PSTcp.psd1). Default <repo>/out/PSTcp. A snapshot is
    copied to a temporary directory first, so rebuilding out/PSTcp during a run is harmless.
.EXAMPLE
    dotnet pwsh bench/Measure-PowerShell.ps1 -ModulePath out/PSTcp
#>
[CmdletBinding()]
param(
    [string] $ModulePath,
    [string] $OutDir,
    [ValidateRange(1000, 10000000)]
    [int] $Lines = 1000000,
    [ValidateRange(1000, 10000000)]
    [int] $AutoFlushLines = 100000,
    [ValidateRange(1, 9)]
    [int] $Repeat = 3,
    [ValidateRange(3, 31)]
    [int] $ImportRuns = 7
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$BenchDir = $PSScriptRoot
$Root = Split-Path $BenchDir -Parent
. (Join-Path $BenchDir 'BenchTools.ps1')
$inv = [Globalization.CultureInfo]::InvariantCulture
$benchStart = [Diagnostics.Stopwatch]::StartNew()

$ModulePath = Resolve-UserPath $ModulePath (Join-Path $Root 'out/PSTcp')
$OutDir = Resolve-UserPath $OutDir (Join-Path $Root 'out/bench')
if (-not (Test-Path (Join-Path $ModulePath 'PSTcp.psd1'))) { throw "No module at $ModulePath (build it with: dotnet pwsh ./build.ps1)" }

# ------------------------------------------------------------------ processes





# The next JSON line a driver prints, bounded.
function Read-Event([Diagnostics.Process] $Process, [int] $TimeoutSeconds) {
    $task = $Process.StandardOutput.ReadLineAsync()
    if (-not $task.Wait($TimeoutSeconds * 1000)) { throw "No output from the driver within $TimeoutSeconds s." }
    if ($null -eq $task.Result) { throw "The driver ended: $($Process.StandardError.ReadToEnd())" }
    $task.Result | ConvertFrom-Json -AsHashtable
}


function Format-N($Value, [string] $Format = 'N0') {
    if ($null -eq $Value) { return 'n/a' }
    ([double]$Value).ToString($Format, $inv)
}

$results = [ordered]@{}
$rows = [Collections.Generic.List[object]]::new()
function Add-Row([string] $Measurement, $Value, [string] $Unit, [string] $Target = '', $Met = $null, [string] $Format = 'N0') {
    $rows.Add([pscustomobject][ordered]@{
        Measurement = $Measurement
        Value       = "$(Format-N $Value $Format) $Unit"
        Target      = $Target
        Met         = if ($null -eq $Met) { '' } elseif ($Met) { 'yes' } else { 'NO' }
    })
}

$snapshotRoot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-measure-module-$PID"
$sink = $null
try {
    # ------------------------------------------------------------------ setup
    Write-Host 'Building the driver (bench/PSTcp.Stress)...'
    $buildOut = & dotnet build (Join-Path $Root 'bench/PSTcp.Stress/PSTcp.Stress.csproj') -c Release --nologo -v quiet -clp:NoSummary 2>&1
    if ($LASTEXITCODE -ne 0) { $buildOut | Write-Host; throw "Building bench/PSTcp.Stress failed (exit code $LASTEXITCODE)." }
    $driverDll = Join-Path $Root 'bench/PSTcp.Stress/bin/Release/net10.0/PSTcp.Stress.dll'

    $snapshot = Join-Path $snapshotRoot 'PSTcp'
    $null = New-Item -ItemType Directory -Force $snapshot
    Copy-Item (Join-Path $ModulePath '*') $snapshot -Recurse -Force
    $manifest = Join-Path $snapshot 'PSTcp.psd1'
    Import-Module $manifest -Force
    $loadAtStart = (Get-Content /proc/loadavg -ErrorAction SilentlyContinue)

    # ------------------------------------------------------------------ 1. sending
    Write-Host "1. Sending $(Format-N $Lines) lines..."
    $array = [string[]](1..$Lines -replace '^', 'line ')
    $bytesFor = { param([string[]] $a) $n = 0L; foreach ($s in $a) { $n += $s.Length + 1 }; $n }
    $expectBytes = & $bytesFor $array
    $afLines = [Math]::Min($AutoFlushLines, $Lines)
    $afArray = [string[]]$array[0..($afLines - 1)]
    $afBytes = & $bytesFor $afArray

    $sink = Start-Child 'dotnet' @($driverDll, 'sink', '--seconds', '600')
    $sinkPort = (Read-Event $sink 30)['port']

    # Each run: a fresh connection, timed until the sink has counted every byte.
    $sendVariants = [ordered]@{
        'Send-TcpLine -Line $array' = @{ Lines = $Lines; Bytes = $expectBytes; Run = {
            param($data)
            $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $sinkPort
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Send-TcpLine -Connection $c -Line $data
            $c | Disconnect-TcpEndpoint
            $sw } }
        # Issue 11: Send-TcpMessage with the default Line framing sends the same bytes.
        'Send-TcpMessage -Message $array' = @{ Lines = $Lines; Bytes = $expectBytes; Needs = 'Send-TcpMessage'; Run = {
            param($data)
            $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $sinkPort
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Send-TcpMessage -Connection $c -Message $data
            $c | Disconnect-TcpEndpoint
            $sw } }
        '$array | Send-TcpLine' = @{ Lines = $Lines; Bytes = $expectBytes; Run = {
            param($data)
            $c = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $sinkPort
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $data | Send-TcpLine -Connection $c
            $c | Disconnect-TcpEndpoint
            $sw } }
        'StreamWriter, AutoFlush' = @{ Lines = $afLines; Bytes = $afBytes; Data = $afArray; Run = {
            param($data)
            $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $sinkPort)
            $writer = [IO.StreamWriter]::new($tcp.GetStream())
            $writer.AutoFlush = $true
            $sw = [Diagnostics.Stopwatch]::StartNew()
            foreach ($line in $data) { $writer.WriteLine($line) }
            $tcp.Client.Shutdown([Net.Sockets.SocketShutdown]::Send)
            $sw.Stop(); $tcp.Dispose(); $sw.Start()
            $sw } }
        'StreamWriter, one Flush' = @{ Lines = $Lines; Bytes = $expectBytes; Run = {
            param($data)
            $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $sinkPort)
            $writer = [IO.StreamWriter]::new($tcp.GetStream())
            $sw = [Diagnostics.Stopwatch]::StartNew()
            foreach ($line in $data) { $writer.WriteLine($line) }
            $writer.Flush()
            $tcp.Client.Shutdown([Net.Sockets.SocketShutdown]::Send)
            $sw.Stop(); $tcp.Dispose(); $sw.Start()
            $sw } }
        # The pipeline's own cost, for comparison with '$array | Send-TcpLine'.
        'ForEach-Object WriteLine, one Flush' = @{ Lines = $Lines; Bytes = $expectBytes; Run = {
            param($data)
            $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $sinkPort)
            $writer = [IO.StreamWriter]::new($tcp.GetStream())
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $data | ForEach-Object { $writer.WriteLine($_) }
            $writer.Flush()
            $tcp.Client.Shutdown([Net.Sockets.SocketShutdown]::Send)
            $sw.Stop(); $tcp.Dispose(); $sw.Start()
            $sw } }
        # The same loop dot-sourced, as at a script's top level: variables are looked up by
        # name there, not in the compiled locals of a function, and it is much slower.
        'StreamWriter, one Flush, dot-sourced' = @{ Lines = $Lines; Bytes = $expectBytes; Run = {
            param($data)
            $sw = $null
            . {
                $tcp = [Net.Sockets.TcpClient]::new('127.0.0.1', $sinkPort)
                $writer = [IO.StreamWriter]::new($tcp.GetStream())
                $sw = [Diagnostics.Stopwatch]::StartNew()
                foreach ($line in $data) { $writer.WriteLine($line) }
                $writer.Flush()
                $tcp.Client.Shutdown([Net.Sockets.SocketShutdown]::Send)
                $sw.Stop(); $tcp.Dispose(); $sw.Start()
            }
            $sw } }
    }
    foreach ($name in @($sendVariants.Keys)) {
        $needs = $sendVariants[$name]['Needs']
        if ($needs -and -not (Get-Command $needs -Module PSTcp -ErrorAction SilentlyContinue)) {
            Write-Host "   $name : skipped, $needs is not in this build of PSTcp"
            $sendVariants.Remove($name)
        }
    }
    $sendRuns = [ordered]@{}
    foreach ($name in $sendVariants.Keys) { $sendRuns[$name] = [Collections.Generic.List[object]]::new() }
    # Rounds: one warm-up (the same data, not counted), then -Repeat measured; variants alternate.
    for ($round = 0; $round -le $Repeat; $round++) {
        foreach ($name in $sendVariants.Keys) {
            $v = $sendVariants[$name]
            # Plain assignments: an if-expression would unroll the string[] into an object[].
            $data = $array
            if ($v.ContainsKey('Data')) { $data = $v.Data }
            $wantLines = $v.Lines
            $wantBytes = $v.Bytes
            $sw = & $v.Run $data
            $closed = Read-Event $sink 120
            $sw.Stop()
            if ($closed['event'] -ne 'closed') { throw "Unexpected sink output: $($closed | ConvertTo-Json -Compress)" }
            if ($round -eq 0) { continue }
            $ok = $closed['lines'] -eq $wantLines -and $closed['bytes'] -eq $wantBytes
            $sendRuns[$name].Add([ordered]@{ lines = $wantLines; seconds = $sw.Elapsed.TotalSeconds; lines_per_sec = $wantLines / $sw.Elapsed.TotalSeconds; sink_lines = $closed['lines']; sink_bytes = $closed['bytes']; ok = $ok })
            if (-not $ok) { Write-Warning "$name : the sink counted $($closed['lines']) lines / $($closed['bytes']) bytes, expected $wantLines / $wantBytes" }
            Write-Host ("   {0,-28} {1,12} lines/s" -f $name, (Format-N ($wantLines / $sw.Elapsed.TotalSeconds)))
        }
    }
    Stop-Child $sink; $sink = $null
    $rate = @{}
    foreach ($name in $sendRuns.Keys) { $rate[$name] = Get-Median @($sendRuns[$name] | ForEach-Object { $_.lines_per_sec }) }
    $sendOk = -not @($sendRuns.Values | ForEach-Object { $_ } | Where-Object { -not $_.ok }).Count
    $results.send = [ordered]@{ lines = $Lines; autoflush_lines = $afLines; repeat = $Repeat; all_bytes_arrived = $sendOk; median_lines_per_sec = $rate; runs = $sendRuns }
    $line = $rate['Send-TcpLine -Line $array']; $pipe = $rate['$array | Send-TcpLine']
    $af = $rate['StreamWriter, AutoFlush']; $buf = $rate['StreamWriter, one Flush']
    Add-Row 'Send-TcpLine -Line $array' $line 'lines/s'
    if ($sendVariants.Contains('Send-TcpMessage -Message $array')) {
        $msg = $rate['Send-TcpMessage -Message $array']
        Add-Row 'Send-TcpMessage -Message $array' $msg 'lines/s'
        Add-Row '  Send-TcpMessage / Send-TcpLine -Line' ($msg / $line) 'x' '>= 1.0' (($msg / $line) -ge 1) 'N2'
    } else {
        $rows.Add([pscustomobject][ordered]@{ Measurement = 'Send-TcpMessage -Message $array'; Value = 'skipped'; Target = 'Send-TcpMessage is not in this build'; Met = '' })
    }
    Add-Row '$array | Send-TcpLine' $pipe 'lines/s'
    Add-Row "foreach WriteLine, AutoFlush ($(Format-N $afLines) lines, scaled)" $af 'lines/s'
    Add-Row 'foreach WriteLine, one Flush' $buf 'lines/s'
    Add-Row '  the same loop dot-sourced (script top level)' $rate['StreamWriter, one Flush, dot-sourced'] 'lines/s'
    Add-Row '  $array | ForEach-Object { WriteLine }, one Flush' $rate['ForEach-Object WriteLine, one Flush'] 'lines/s'
    Add-Row '  -Line / AutoFlush' ($line / $af) 'x' '>= 5' (($line / $af) -ge 5) 'N2'
    Add-Row '  -Line / one Flush' ($line / $buf) 'x' '>= 1.0' (($line / $buf) -ge 1) 'N2'
    Add-Row '  pipeline / AutoFlush' ($pipe / $af) 'x' '>= 5' (($pipe / $af) -ge 5) 'N2'
    Add-Row '  pipeline / one Flush' ($pipe / $buf) 'x' '>= 1.0' (($pipe / $buf) -ge 1) 'N2'
    $array = $null; $afArray = $null
    [GC]::Collect()

    # ------------------------------------------------------------------ 2. Receive-Job
    Write-Host "2. Receive-Job draining $(Format-N $Lines) messages..."
    $perClient = [int][Math]::Ceiling($Lines / 16)
    $total = [long]$perClient * 16
    $server = Start-TcpEchoServer -Port 0 -QueueFullMode Wait -Name MeasureJob
    try {
      $jobRuns = [Collections.Generic.List[object]]::new()
      for ($rep = 1; $rep -le $Repeat; $rep++) {
        $job = $server | Receive-TcpMessage -AsJob
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $fill = Start-Child 'dotnet' @($driverDll, 'fill', '--port', "$($server.Port)", '--clients', '16', '--lines', "$perClient", '--timeout-seconds', '120')
        $got = 0L; $calls = 0
        while ($got -lt $total -and $sw.Elapsed.TotalSeconds -lt 120) {
            $r = @(Receive-Job $job); $calls++
            $got += $r.Count
            if ($r.Count -eq 0) { Start-Sleep -Milliseconds 1 }
        }
        $seconds = $sw.Elapsed.TotalSeconds
        $fillResult = Read-Event $fill 30
        Stop-Child $fill
        $job | Stop-Job; $job | Remove-Job
        $jobRuns.Add([ordered]@{ messages = $total; received = $got; seconds = $seconds; messages_per_sec = $got / $seconds; receive_job_calls = $calls; generator = $fillResult; ok = $got -eq $total -and [bool]$fillResult['ok'] })
        Write-Host ("   concurrent fill, Wait mode, capacity 10,000: {0} msg/s ({1} Receive-Job calls; generator ok={2})" -f (Format-N ($got / $seconds)), $calls, $fillResult['ok'])
      }
        $jobRate = Get-Median @($jobRuns | ForEach-Object { $_.messages_per_sec })
        $jobOk = -not @($jobRuns | Where-Object { -not $_.ok }).Count
        $results.receive_job = [ordered]@{ messages = $total; queue_capacity = 10000; median_messages_per_sec = $jobRate; all_received = $jobOk; runs = $jobRuns }
        Add-Row "Receive-Job, $(Format-N $total) msgs while generated" $jobRate 'msg/s' '>= 500,000' ($jobRate -ge 500000 -and $jobOk)
    } finally { $server | Stop-TcpServer }

    # Prefilled: the job takes everything queued at once (it reads up to the queue's capacity ahead).
    $prefilled = [ordered]@{}
    foreach ($n in 100000, 200000) {
        $server = Start-TcpEchoServer -Port 0 -QueueFullMode Wait -QueueCapacity 1000000 -Name MeasurePrefill
        try {
            $f = Invoke-Child 'dotnet' @($driverDll, 'fill', '--port', "$($server.Port)", '--clients', '16', '--lines', "$($n / 16)") 120
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($server.QueueLength -lt $n -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $job = $server | Receive-TcpMessage -AsJob
            # The job takes everything queued (up to the queue's capacity) before anyone receives.
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($job.Output.Count -lt $n -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $held = $job.Output.Count
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $got = 0L
            while ($got -lt $n -and $sw.Elapsed.TotalSeconds -lt 60) {
                $r = @(Receive-Job $job)
                $got += $r.Count
                if ($r.Count -eq 0) { Start-Sleep -Milliseconds 1 }
            }
            $seconds = $sw.Elapsed.TotalSeconds
            $job | Stop-Job; $job | Remove-Job
            $prefilled["$n"] = [ordered]@{ messages = $n; held_by_job_at_start = $held; received = $got; seconds = $seconds; messages_per_sec = $got / $seconds; fill_exit_code = $f.ExitCode }
            Write-Host ("   {0} queued, {1} held by the job when receiving began (capacity 1,000,000): {2} msg/s" -f (Format-N $n), (Format-N $held), (Format-N ($got / $seconds)))
            # The job reads ahead only so far: say how much it really held, not what was queued.
            Add-Row "Receive-Job, $(Format-N $n) queued first ($(Format-N $held) held by the job)" ($got / $seconds) 'msg/s'
        } finally { $server | Stop-TcpServer }
    }
    $results.receive_job.prefilled = $prefilled

    # ------------------------------------------------------------------ 3. Receive-TcpMessage
    Write-Host "3. Receive-TcpMessage -Server -Count $(Format-N $Lines)..."
    $recv = [ordered]@{}
    foreach ($into in 'null', 'variable') { $recv[$into] = [Collections.Generic.List[object]]::new() }
    foreach ($into in @(for ($rep = 1; $rep -le $Repeat; $rep++) { 'null', 'variable' })) {
        $server = Start-TcpEchoServer -Port 0 -QueueFullMode Wait -QueueCapacity $total -Name MeasureReceive
        try {
            $f = Invoke-Child 'dotnet' @($driverDll, 'fill', '--port', "$($server.Port)", '--clients', '16', '--lines', "$perClient") 120
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($server.QueueLength -lt $total -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $queued = $server.QueueLength
            $errs = $null
            $sw = [Diagnostics.Stopwatch]::StartNew()
            if ($into -eq 'null') {
                $null = Receive-TcpMessage -Server $server -Count $total -Timeout 00:01:00 -ErrorAction SilentlyContinue -ErrorVariable errs
                $sw.Stop()
                $got = $queued - $server.QueueLength
            } else {
                $messages = Receive-TcpMessage -Server $server -Count $total -Timeout 00:01:00 -ErrorAction SilentlyContinue -ErrorVariable errs
                $sw.Stop()
                $got = $messages.Count
                $messages = $null
            }
            $r = $got / $sw.Elapsed.TotalSeconds
            $recv[$into].Add([ordered]@{ queued = $queued; received = $got; seconds = $sw.Elapsed.TotalSeconds; messages_per_sec = $r; errors = @($errs | ForEach-Object { "$_" }); fill_exit_code = $f.ExitCode; ok = $got -eq $total -and -not $errs })
            Write-Host ("   into {0}: {1} msg/s ({2} received)" -f $into, (Format-N $r), (Format-N $got))
        } finally { $server | Stop-TcpServer }
        [GC]::Collect()
    }
    foreach ($into in 'null', 'variable') {
        $med = Get-Median @($recv[$into] | ForEach-Object { $_.messages_per_sec })
        $bad = @($recv[$into] | Where-Object { -not $_.ok }).Count
        Add-Row "Receive-TcpMessage -Count $(Format-N $total), into `$$into$(if ($bad) { ' (! short)' })" $med 'msg/s'
    }
    $results.receive_tcpmessage = $recv

    # ------------------------------------------------------------------ 4. Test-TcpEndpoint
    # Issue 14: 1,000 loopback ports, half of them listening (sockets of this process that
    # never accept: the kernel completes the handshake), half closed (bound once, then
    # released, so they refuse). Median of -Repeat calls; every answer is checked.
    if (Get-Command Test-TcpEndpoint -Module PSTcp -ErrorAction SilentlyContinue) {
        Write-Host '4. Test-TcpEndpoint over 1,000 loopback ports, half open...'
        $listeners = [Collections.Generic.List[Net.Sockets.TcpListener]]::new()
        try {
            for ($i = 0; $i -lt 500; $i++) {
                $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
                $l.Start(); $listeners.Add($l)
            }
            $open = @($listeners | ForEach-Object { $_.LocalEndpoint.Port })
            $closed = [Collections.Generic.List[int]]::new()
            while ($closed.Count -lt 500) {
                $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
                $l.Start(); $port = $l.LocalEndpoint.Port; $l.Stop()
                if ($port -notin $open -and $port -notin $closed) { $closed.Add($port) }
            }
            $ports = [int[]](@($open) + @($closed) | Sort-Object)
            $probeRuns = [Collections.Generic.List[object]]::new()
            for ($rep = 1; $rep -le $Repeat; $rep++) {
                $sw = [Diagnostics.Stopwatch]::StartNew()
                $answers = @(Test-TcpEndpoint -HostName 127.0.0.1 -Port $ports)
                $sw.Stop()
                $openSeen = @($answers | Where-Object { $_.Open -and $_.Port -in $open }).Count
                $refused = @($answers | Where-Object { -not $_.Open -and $_.Port -in $closed }).Count
                $ok = $answers.Count -eq 1000 -and $openSeen -eq 500 -and $refused -eq 500
                $probeRuns.Add([ordered]@{ seconds = $sw.Elapsed.TotalSeconds; answers = $answers.Count; open_seen = $openSeen; closed_seen = $refused; ok = $ok })
                Write-Host ("   {0:N2} s ({1} answers, {2} open, {3} closed as expected)" -f $sw.Elapsed.TotalSeconds, $answers.Count, $openSeen, $refused)
            }
            $med = Get-Median @($probeRuns | ForEach-Object { $_.seconds })
            $allOk = -not @($probeRuns | Where-Object { -not $_.ok }).Count
            $results.test_tcpendpoint = [ordered]@{ ports = 1000; open = 500; median_seconds = $med; all_answers_right = $allOk; runs = $probeRuns }
            Add-Row "Test-TcpEndpoint, 1,000 ports, 500 open$(if (-not $allOk) { ' (! wrong answers)' })" $med 's' '< 2' ($med -lt 2 -and $allOk) 'N2'
        } finally { foreach ($l in $listeners) { $l.Stop() } }
    } else {
        Write-Host '4. Test-TcpEndpoint: skipped, it is not in this build of PSTcp'
        $rows.Add([pscustomobject][ordered]@{ Measurement = 'Test-TcpEndpoint, 1,000 ports, 500 open'; Value = 'skipped'; Target = 'Test-TcpEndpoint is not in this build'; Met = '' })
    }

    # ------------------------------------------------------------------ 5. Import-Module
    Write-Host "5. Import-Module, $ImportRuns fresh processes each..."
    $pwsh = @(Get-PwshCommand)
    $pwshFile = $pwsh[0]; $pwshArgs = @($pwsh | Select-Object -Skip 1)
    $bare = [Collections.Generic.List[double]]::new()
    $import = [Collections.Generic.List[double]]::new()
    $inProc = [Collections.Generic.List[double]]::new()
    $importCmd = "Import-Module '$manifest'"
    $measureCmd = "[Console]::Out.WriteLine((Measure-Command { Import-Module '$manifest' }).TotalMilliseconds.ToString([Globalization.CultureInfo]::InvariantCulture))"
    $null = Invoke-Child $pwshFile ($pwshArgs + @('-NoProfile', '-Command', 'exit')) 60   # warm the file cache
    for ($i = 0; $i -lt $ImportRuns; $i++) {
        $r = Invoke-Child $pwshFile ($pwshArgs + @('-NoProfile', '-Command', 'exit')) 60
        if ($r.ExitCode -eq 0) { $bare.Add($r.Ms) }
        $r = Invoke-Child $pwshFile ($pwshArgs + @('-NoProfile', '-Command', $importCmd)) 60
        if ($r.ExitCode -eq 0) { $import.Add($r.Ms) } else { Write-Warning "Import-Module run failed: $($r.Stderr.Trim())" }
        $r = Invoke-Child $pwshFile ($pwshArgs + @('-NoProfile', '-Command', $measureCmd)) 60
        $v = 0.0
        if ($r.ExitCode -eq 0 -and [double]::TryParse(($r.Stdout.Trim() -split "`n")[-1], [Globalization.NumberStyles]::Float, $inv, [ref]$v)) { $inProc.Add($v) }
    }
    $bareMed = Get-Median $bare; $importMed = Get-Median $import; $inProcMed = Get-Median $inProc
    $importCost = if ($null -ne $bareMed -and $null -ne $importMed) { $importMed - $bareMed } else { $null }
    $results.import_module = [ordered]@{ runs = $ImportRuns; bare_ms = $bare; import_ms = $import; in_process_ms = $inProc; bare_median_ms = $bareMed; import_median_ms = $importMed; import_cost_ms = $importCost; in_process_median_ms = $inProcMed }
    Add-Row 'pwsh -Command exit (median)' $bareMed 'ms'
    Add-Row 'pwsh -Command Import-Module (median)' $importMed 'ms'
    Add-Row 'Import-Module cost (difference of medians)' $importCost 'ms' '<= 150' ($null -ne $importCost -and $importCost -le 150)
    Add-Row 'Measure-Command { Import-Module } in a fresh process (median)' $inProcMed 'ms' '<= 150' ($null -ne $inProcMed -and $inProcMed -le 150)
} finally {
    if ($sink) { Stop-Child $sink }
    foreach ($p in @($script:Children)) { Stop-Child $p }
    Remove-Module PSTcp -ErrorAction SilentlyContinue
    # The loaded DLL stays mapped until this process ends; deleting the files is fine on Unix.
    if (Test-Path $snapshotRoot) { Remove-Item $snapshotRoot -Recurse -Force -ErrorAction SilentlyContinue }
}

# ------------------------------------------------------------------ report
$machine = [ordered]@{
    nproc            = [Environment]::ProcessorCount
    cpu_model        = Get-FirstMatch '/proc/cpuinfo' '^model name\s*:\s*(.*)$'
    os               = Get-FirstMatch '/etc/os-release' '^PRETTY_NAME="?([^"]*)"?'
    loadavg_at_start = $loadAtStart
    loadavg_at_end   = (Get-Content /proc/loadavg -ErrorAction SilentlyContinue)
    dotnet           = [Environment]::Version.ToString()
    powershell       = $PSVersionTable.PSVersion.ToString()
}
$stamp = (Get-Date).ToString('yyyyMMdd-HHmmss')
$null = New-Item -ItemType Directory -Force $OutDir
$report = [ordered]@{
    timestamp        = (Get-Date).ToString('o')
    duration_seconds = [Math]::Round($benchStart.Elapsed.TotalSeconds, 1)
    module_path      = $ModulePath
    machine          = $machine
    table            = @($rows)
    results          = $results
}
$jsonPath = Join-Path $OutDir "powershell-$stamp.json"
$report | ConvertTo-Json -Depth 8 | Set-Content -Path $jsonPath -Encoding utf8NoBOM
Copy-Item $jsonPath (Join-Path $OutDir 'latest-powershell.json') -Force

Write-Host ''
Write-Host ("PSTcp from PowerShell - {0} x {1}; load average {2} at start, {3} at end" -f $machine.nproc, $machine.cpu_model, ($machine.loadavg_at_start -split ' ')[0], ($machine.loadavg_at_end -split ' ')[0])
$rows | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host "Raw results: $jsonPath ($([Math]::Round($benchStart.Elapsed.TotalSeconds))s)"

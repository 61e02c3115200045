# What Invoke-Benchmark.ps1 runs (the scenarios) and how it summarises them (the table of
# medians and the targets of issues 10, 11 and 14). Dot-source after BenchServers.ps1.

# Each scenario: the generator's arguments, the servers it runs on, the metrics shown (key in
# the generator's JSON, label, format), and:
#   Once     run in the first repetition only (memory, fairness and PSTcp-only comparisons)
#   Phases   the generator stops at measuring points and the bench answers (PSTcp's heap)
#   OnPhase  a different answer (stopjob times Stop-Job while the flood runs)
#   Derive   adds figures computed here to the run's result
#   Table    'main' (the four compared servers) or 'targets' only
#   WarmArgs an untimed generator run against the same server first (bulk's warm-up)
#   NotQuick left out of -Quick runs;  Optional  run only when named in -Scenario
function Get-BenchScenarios([switch] $Quick, [double] $Warmup, [int] $IdleConnections, [int] $DribbleConnections) {
    $compared = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines')
    $secs = if ($Quick) { '1' } else { '2' }
    $warm = $Warmup.ToString([Globalization.CultureInfo]::InvariantCulture)
    $timed = @('--seconds', $secs, '--warmup', $warm)
    # Bulk is timed from its first byte (256 MiB takes a fraction of a second), so its warm-up
    # is a separate untimed run first, of the same line size, against the same server.
    $bulkWarm = if ($Warmup -gt 0) { @('pipelined', '--clients', '1', '--line-size', '1024', '--seconds', $warm, '--warmup', '0') } else { $null }
    $cpuLine = @('server_cpu_ns_per_op', 'server CPU ns/line', 'N0')
    $lines = @(@('lines_per_sec', 'lines/s', 'N0'), $cpuLine)
    # 128 lines of 64 bytes in flight per client, sent as soon as there is room: small writes.
    $window = @('pipelined', '--line-size', '64', '--window-lines', '128', '--fill') + $timed
    $goWindow = @('--line-size', '64', '--window-lines', '128') + $timed
    $pingMetrics = @(@('round_trips_per_sec', 'round trips/s', 'N0'), @('p50_us', 'p50 latency (us)', 'N1'),
                     @('p99_us', 'p99 latency (us)', 'N1'), @('server_cpu_ns_per_op', 'server CPU ns/round trip', 'N0'))
    $fairMetrics = @(@('first_echo_p50_ms', 'probe first echo p50 (ms)', 'N2'), @('first_echo_p99_ms', 'probe first echo p99 (ms)', 'N2'),
                     @('first_echo_max_ms', 'probe first echo max (ms)', 'N2'), @('connect_p99_ms', 'probe connect p99 (ms)', 'N2'),
                     @('connect_max_ms', 'probe connect max (ms)', 'N2'), @('flood_lines_per_sec', 'flood lines/s', 'N0'), $cpuLine)
    $fairSecs = if ($Quick) { '1.5' } else { '3' }
    # A flood keeps the server's socket buffers full: 4 MiB in flight per client, 256 KiB
    # writes, so a receive on a flooding connection always completes at once.
    $floodWindow = @('--window', "$(4MB)", '--chunk', "$(256KB)")
    $stopTries = if ($Quick) { 5 } else { 10 }
    $settle = if ($Quick) { '300' } else { '500' }
    [ordered]@{
        'pingpong'    = @{ Args = @('pingpong', '--clients', '1', '--line-size', '64') + $timed; Metrics = $pingMetrics; NotQuick = $true }
        'pingpong-16' = @{ Args = @('pingpong', '--clients', '16', '--line-size', '64') + $timed; Metrics = $pingMetrics }
        'window-16'   = @{ Args = $window + @('--clients', '16'); Metrics = $lines }
        'window-64'   = @{ Args = $window + @('--clients', '64'); Metrics = $lines; NotQuick = $true }
        # The same shape driven by bench/peers/go-load instead of PSTcp.Bench: a second client,
        # lighter than the C# one, so the ratios don't rest on one generator's costs.
        'window-16-go' = @{ Args = $goWindow + @('--clients', '16'); Metrics = $lines; Generator = 'go-load' }
        'window-64-go' = @{ Args = $goWindow + @('--clients', '64'); Metrics = $lines; Generator = 'go-load'; NotQuick = $true }
        # Ping-pong with one client driven by go-load (one 64-byte line in flight: send, read the
        # echo, repeat), so that issue 22's ping-pong c=1 is measured by a client that isn't .NET.
        'pingpong-go'  = @{ Args = @('--clients', '1', '--line-size', '64', '--window-lines', '1') + $timed
                            Metrics = @(@('lines_per_sec', 'round trips/s', 'N0'), @('server_cpu_ns_per_op', 'server CPU ns/round trip', 'N0'))
                            Generator = 'go-load'; NotQuick = $true }
        'pipelined-1'  = @{ Args = @('pipelined', '--clients', '1', '--line-size', '64') + $timed; Metrics = $lines; Optional = $true }
        'pipelined-16' = @{ Args = @('pipelined', '--clients', '16', '--line-size', '64') + $timed; Metrics = $lines }
        'pipelined-64' = @{ Args = @('pipelined', '--clients', '64', '--line-size', '64') + $timed; Metrics = $lines; NotQuick = $true }
        'bulk'        = @{ Args = @('bulk', '--clients', '1', '--line-size', '1024', '--bytes', "$(256MB)", '--seconds', '30'); WarmArgs = $bulkWarm
                           Metrics = @(@('mb_per_sec', 'MB/s', 'N0'), $cpuLine) }
        'churn'       = @{ Args = @('churn', '--clients', '4', '--line-size', '64') + $timed
                           Metrics = @(@('connections_per_sec', 'connections/s', 'N0'), @('server_cpu_ns_per_op', 'server CPU ns/connection', 'N0'))
                           NotQuick = $true }
        'fairness-1'  = @{ Args = @('fairness', '--clients', '1', '--seconds', $fairSecs, '--probe-ms', '100') + $floodWindow; Metrics = $fairMetrics; Once = $true }
        'fairness-16' = @{ Args = @('fairness', '--clients', '16', '--seconds', $fairSecs, '--probe-ms', '100') + $floodWindow; Metrics = $fairMetrics; Once = $true }
        'dribble'     = @{ Args = @('dribble', '--clients', "$DribbleConnections", '--bytes', '100', '--pause-ms', '1', '--settle-ms', $settle)
                           Metrics = @(@('peak_rss_per_conn', 'peak RSS bytes/connection', 'N0'), @('peak_heap_per_conn', 'peak heap bytes/connection', 'N0'),
                                       @('complete_rss_per_conn', 'RSS bytes/connection, lines done', 'N0'), @('complete_heap_per_conn', 'heap bytes/connection, lines done', 'N0'),
                                       @('closed_rss_per_conn', 'RSS bytes/connection, closed', 'N0'), @('closed_heap_per_conn', 'heap bytes/connection, closed', 'N0'),
                                       @('server_cpu_ns_per_op', 'server CPU ns/segment', 'N0'))
                           Once = $true; Phases = $true }
        'idle'        = @{ Args = @('idle', '--clients', "$IdleConnections", '--push-lines', '100', '--settle-ms', $settle)
                           Metrics = @(@('idle_rss_per_conn', 'idle RSS bytes/connection', 'N0'), @('idle_heap_per_conn', 'idle heap bytes/connection', 'N0'),
                                       @('pushed_rss_per_conn', 'RSS bytes/connection after a push', 'N0'), @('pushed_heap_per_conn', 'heap bytes/connection after a push', 'N0'),
                                       @('server_cpu_ns_per_op', 'server CPU ns/line of the push', 'N0'))
                           Once = $true; Phases = $true; TimeoutSeconds = 300 }
        # Stop-Job on a consumer job while 16 clients flood (PSTcp with its queue only).
        'stopjob'     = @{ Args = @('pipelined', '--clients', '16', '--line-size', '64', '--seconds', '0.5', '--warmup', '0.5')
                           Servers = @('PSTcp'); Once = $true; Phases = $true; Table = 'targets'
                           Metrics = @(@('stopjob_p50_ms', 'Stop-Job p50 (ms)', 'N1'), @('stopjob_max_ms', 'Stop-Job max (ms)', 'N1'))
                           StopTries = $stopTries
                           OnPhase = {
                               param($srv, $run, $name, $arg, $sc)
                               $answer = Invoke-ServerCommand $srv "stopjob $($sc.StopTries)" 120
                               $run.stopjob_ms = @($answer -split ',' | ForEach-Object { [double]::Parse($_, [Globalization.CultureInfo]::InvariantCulture) })
                               '-'
                           }
                           Derive = {
                               param($run)
                               $ms = @($run['stopjob_ms'] | Sort-Object)
                               if ($ms.Count) {
                                   $run.result['stopjob_tries'] = $ms.Count
                                   $run.result['stopjob_p50_ms'] = $ms[[int][Math]::Floor(($ms.Count - 1) / 2)]
                                   $run.result['stopjob_max_ms'] = $ms[-1]
                               }
                           } }
        # Issue 11: the same window-16 load, every message a 4-byte big-endian length and a
        # 60-byte payload (64 bytes on the wire, as a line), against -Framing LengthPrefix.
        'lengthprefix-16' = @{ Args = $window + @('--clients', '16', '--frame', 'lp4'); Servers = @('PSTcpLP', 'PSTcpNoQueueLP')
                               Metrics = $lines; Table = 'targets' }
        # Issue 14: Start-TcpRelay and socat, each in front of a fresh Go echo server.
        'relay-bulk'     = @{ Args = @('bulk', '--clients', '1', '--line-size', '1024', '--bytes', "$(256MB)", '--seconds', '30'); WarmArgs = $bulkWarm
                              Servers = @('Relay', 'RelayNoQueue', 'socat'); Metrics = @(,@('mb_per_sec', 'MB/s', 'N0')); Table = 'targets' }
        'relay-pingpong' = @{ Args = @('pingpong', '--clients', '1', '--line-size', '64') + $timed
                              Servers = @('Relay', 'RelayNoQueue', 'socat'); Metrics = $pingMetrics[0..2]; Table = 'targets' }
    } | ForEach-Object {
        foreach ($sc in $_.Values) {
            if (-not $sc.ContainsKey('Servers')) { $sc.Servers = $compared }
            if (-not $sc.ContainsKey('Table')) { $sc.Table = 'main' }
            if (-not $sc.ContainsKey('TimeoutSeconds')) { $sc.TimeoutSeconds = 150 }
            foreach ($k in 'Once', 'Phases', 'OnPhase', 'Derive', 'NotQuick', 'Optional') { if (-not $sc.ContainsKey($k)) { $sc[$k] = $null } }
        }
        $_
    }
}

# The median of one metric over the good runs of a scenario on a server (over all runs with
# a value when none was good), and whether every run was good (a metric a server does not
# report, such as a peer's managed heap, is n/a without a mark).
function Get-RunMedian($Runs, [string] $ScenarioName, [string] $ServerName, [string] $Key) {
    $mine = @($Runs | Where-Object { $_.scenario -eq $ScenarioName -and $_.server -eq $ServerName })
    if ($mine.Count -eq 0) { return $null }
    $good = @($mine | Where-Object { $_.ok -and $null -ne $_.result -and $null -ne $_.result[$Key] })
    $use = if ($good.Count) { $good } else { @($mine | Where-Object { $null -ne $_.result -and $null -ne $_.result[$Key] }) }
    [pscustomobject]@{ Value = Get-Median @($use | ForEach-Object { [double]$_.result[$Key] }); AllGood = @($mine | Where-Object { -not $_.ok }).Count -eq 0 }
}

function Format-Ratio($A, $B) {
    if ($null -eq $A -or $null -eq $B -or $B -eq 0) { return '-' }
    ($A / $B).ToString('0.00', [Globalization.CultureInfo]::InvariantCulture)
}

# The main table: one row per scenario and metric, the four servers and the ratios.
function Get-BenchRows($Scenarios, $Runs) {
    $names = @('PSTcp', 'PSTcpNoQueue', 'Go', 'Pipelines')
    foreach ($scenarioName in $Scenarios.Keys) {
        if ($Scenarios[$scenarioName].Table -ne 'main') { continue }
        foreach ($metric in $Scenarios[$scenarioName].Metrics) {
            $key, $label, $format = $metric
            $cells = @{}; $values = @{}
            foreach ($name in $names) {
                $m = Get-RunMedian $Runs $scenarioName $name $key
                $values[$name] = if ($m) { $m.Value } else { $null }
                $cells[$name] = if (-not $m) { '-' } elseif ($null -eq $m.Value) { 'n/a' } else { $m.Value.ToString($format, [Globalization.CultureInfo]::InvariantCulture) }
                if ($m -and -not $m.AllGood) { $cells[$name] += ' !' }
            }
            if (@($values.Values | Where-Object { $null -ne $_ }).Count -eq 0) { continue }
            [pscustomobject][ordered]@{
                Scenario          = $scenarioName
                Metric            = $label
                PSTcp             = $cells['PSTcp']
                'PSTcp -NoQueue'  = $cells['PSTcpNoQueue']
                Go                = $cells['Go']
                Pipelines         = $cells['Pipelines']
                'PSTcp/Go'        = Format-Ratio $values['PSTcp'] $values['Go']
                'NoQueue/Go'      = Format-Ratio $values['PSTcpNoQueue'] $values['Go']
                'PSTcp/Pipelines' = Format-Ratio $values['PSTcp'] $values['Pipelines']
                values            = $values
            }
        }
    }
}

# The targets of issues 10, 11 and 14 that a bench run can decide, each against its reference
# from the same run. Met: yes / NO per PSTcp variant, '-' when a figure is missing.
function Get-TargetRows($Runs) {
    $inv = [Globalization.CultureInfo]::InvariantCulture
    function Get-Val([string] $sc, [string] $srv, [string] $key) { $m = Get-RunMedian $Runs $sc $srv $key; if ($m) { $m.Value } else { $null } }
    function Format-Val($v, [string] $fmt = 'N0') { if ($null -eq $v) { 'n/a' } else { ([double]$v).ToString($fmt, $inv) } }
    function Get-Ratio($a, $b) { if ($null -eq $a -or $null -eq $b -or $b -eq 0) { $null } else { $a / $b } }
    function Format-Cell($v, $ratio, [string] $fmt = 'N0') { if ($null -eq $v) { '-' } elseif ($null -eq $ratio) { Format-Val $v $fmt } else { "$(Format-Val $v $fmt) ($(Format-Val $ratio 'N2')x)" } }
    function Format-Met($ok) { if ($null -eq $ok) { '-' } elseif ($ok) { 'yes' } else { 'NO' } }
    function New-Row([string] $target, $a, $b, [string] $reference, [string] $goal, [string] $met) {
        [pscustomobject][ordered]@{ Target = $target; PSTcp = $a; 'PSTcp -NoQueue' = $b; Reference = $reference; Goal = $goal; Met = $met }
    }
    function Test-Ratio($ratio, [double] $min) { if ($null -eq $ratio) { $null } else { $ratio -ge $min } }

    # Issue 10's echo goal, in both shapes: small writes with 128 lines in flight (window, the
    # independent generator's), and 64 KiB writes (pipelined).
    foreach ($sc in 'window-16', 'window-64', 'window-16-go', 'window-64-go', 'pipelined-16', 'pipelined-64') {
        $go = Get-Val $sc 'Go' 'lines_per_sec'
        $q = Get-Val $sc 'PSTcp' 'lines_per_sec'; $nq = Get-Val $sc 'PSTcpNoQueue' 'lines_per_sec'
        if ($null -eq $go -and $null -eq $q -and $null -eq $nq) { continue }
        $shape = if ($sc -like 'window-*-go') { '128 in flight, Go client' } elseif ($sc -like 'window-*') { '128 in flight' } else { '64 KiB writes' }
        New-Row "$sc lines/s ($shape)" (Format-Cell $q (Get-Ratio $q $go)) (Format-Cell $nq (Get-Ratio $nq $go)) "Go $(Format-Val $go)" '>= 1.0x Go' "$(Format-Met (Test-Ratio (Get-Ratio $q $go) 1.0)) / $(Format-Met (Test-Ratio (Get-Ratio $nq $go) 1.0))"
        $goc = Get-Val $sc 'Go' 'server_cpu_ns_per_op'
        $qc = Get-Val $sc 'PSTcp' 'server_cpu_ns_per_op'; $nqc = Get-Val $sc 'PSTcpNoQueue' 'server_cpu_ns_per_op'
        New-Row "$sc server CPU ns/line" (Format-Cell $qc (Get-Ratio $qc $goc)) (Format-Cell $nqc (Get-Ratio $nqc $goc)) "Go $(Format-Val $goc)" '(reported)' '-'
    }
    $go = Get-Val 'bulk' 'Go' 'mb_per_sec'; $q = Get-Val 'bulk' 'PSTcp' 'mb_per_sec'; $nq = Get-Val 'bulk' 'PSTcpNoQueue' 'mb_per_sec'
    if ($null -ne $go -or $null -ne $q) {
        New-Row 'bulk MB/s (1 KiB lines)' (Format-Cell $q (Get-Ratio $q $go)) (Format-Cell $nq (Get-Ratio $nq $go)) "Go $(Format-Val $go)" '>= 0.9x Go' "$(Format-Met (Test-Ratio (Get-Ratio $q $go) 0.9)) / $(Format-Met (Test-Ratio (Get-Ratio $nq $go) 0.9))"
    }
    foreach ($sc in 'fairness-1', 'fairness-16') {
        $go = Get-Val $sc 'Go' 'first_echo_p99_ms'
        $q = Get-Val $sc 'PSTcp' 'first_echo_p99_ms'; $nq = Get-Val $sc 'PSTcpNoQueue' 'first_echo_p99_ms'
        if ($null -eq $go -and $null -eq $q) { continue }
        $ok = { param($v) if ($null -eq $v -or $null -eq $go) { $null } else { $v -le 3 * $go -and $v -le 250 } }
        New-Row "$sc probe first echo p99 (ms)" (Format-Cell $q (Get-Ratio $q $go) 'N2') (Format-Cell $nq (Get-Ratio $nq $go) 'N2') "Go $(Format-Val $go 'N2')" '<= 3x Go and <= 250 ms' "$(Format-Met (& $ok $q)) / $(Format-Met (& $ok $nq))"
    }
    $go = Get-Val 'dribble' 'Go' 'peak_rss_per_conn'
    $q = Get-Val 'dribble' 'PSTcp' 'peak_rss_per_conn'; $nq = Get-Val 'dribble' 'PSTcpNoQueue' 'peak_rss_per_conn'
    if ($null -ne $go -or $null -ne $q) {
        $ok = { param($v) if ($null -eq $v -or $null -eq $go) { $null } else { $v -le 2 * [Math]::Max($go, 1) } }
        $hq = Get-Val 'dribble' 'PSTcp' 'peak_heap_per_conn'; $hnq = Get-Val 'dribble' 'PSTcpNoQueue' 'peak_heap_per_conn'
        New-Row 'dribble peak RSS bytes/connection' "$(Format-Cell $q (Get-Ratio $q $go)), heap $(Format-Val $hq)" "$(Format-Cell $nq (Get-Ratio $nq $go)), heap $(Format-Val $hnq)" "Go $(Format-Val $go)" '<= 2x Go' "$(Format-Met (& $ok $q)) / $(Format-Met (& $ok $nq))"
    }
    foreach ($phase in 'idle', 'pushed') {
        $q = Get-Val 'idle' 'PSTcp' "${phase}_rss_per_conn"; $nq = Get-Val 'idle' 'PSTcpNoQueue' "${phase}_rss_per_conn"
        if ($null -eq $q -and $null -eq $nq) { continue }
        $hq = Get-Val 'idle' 'PSTcp' "${phase}_heap_per_conn"; $hnq = Get-Val 'idle' 'PSTcpNoQueue' "${phase}_heap_per_conn"
        $go = Get-Val 'idle' 'Go' "${phase}_rss_per_conn"
        $ok = { param($v) if ($null -eq $v) { $null } else { $v -le 4096 } }
        $label = if ($phase -eq 'idle') { 'idle RSS bytes/connection, before a push' } else { 'idle RSS bytes/connection, after a push' }
        New-Row $label "$(Format-Val $q), heap $(Format-Val $hq)" "$(Format-Val $nq), heap $(Format-Val $hnq)" "Go $(Format-Val $go)" '<= 4 KB (4096)' "$(Format-Met (& $ok $q)) / $(Format-Met (& $ok $nq))"
    }
    $p50 = Get-Val 'stopjob' 'PSTcp' 'stopjob_p50_ms'; $max = Get-Val 'stopjob' 'PSTcp' 'stopjob_max_ms'
    if ($null -ne $max) {
        New-Row 'Stop-Job on a consumer job, 16 clients flooding (ms)' "p50 $(Format-Val $p50 'N1'), max $(Format-Val $max 'N1')" '-' '-' 'max < 100 ms' (Format-Met ($max -lt 100))
    }
    $q = Get-Val 'lengthprefix-16' 'PSTcpLP' 'lines_per_sec'; $nq = Get-Val 'lengthprefix-16' 'PSTcpNoQueueLP' 'lines_per_sec'
    $lq = Get-Val 'window-16' 'PSTcp' 'lines_per_sec'; $lnq = Get-Val 'window-16' 'PSTcpNoQueue' 'lines_per_sec'
    if ($null -ne $q -or $null -ne $nq) {
        New-Row '-Framing LengthPrefix messages/s vs Line (window-16)' (Format-Cell $q (Get-Ratio $q $lq)) (Format-Cell $nq (Get-Ratio $nq $lnq)) "Line $(Format-Val $lq) / $(Format-Val $lnq)" '>= 0.9x Line' "$(Format-Met (Test-Ratio (Get-Ratio $q $lq) 0.9)) / $(Format-Met (Test-Ratio (Get-Ratio $nq $lnq) 0.9))"
    }
    $s = Get-Val 'relay-bulk' 'socat' 'mb_per_sec'; $q = Get-Val 'relay-bulk' 'Relay' 'mb_per_sec'; $nq = Get-Val 'relay-bulk' 'RelayNoQueue' 'mb_per_sec'
    if ($null -ne $q -or $null -ne $nq) {
        New-Row 'Start-TcpRelay bulk MB/s vs socat' (Format-Cell $q (Get-Ratio $q $s)) (Format-Cell $nq (Get-Ratio $nq $s)) "socat $(Format-Val $s)" '>= 1.0x socat' "$(Format-Met (Test-Ratio (Get-Ratio $q $s) 1.0)) / $(Format-Met (Test-Ratio (Get-Ratio $nq $s) 1.0))"
        foreach ($k in 'p50_us', 'p99_us') {
            $s = Get-Val 'relay-pingpong' 'socat' $k; $q = Get-Val 'relay-pingpong' 'Relay' $k; $nq = Get-Val 'relay-pingpong' 'RelayNoQueue' $k
            New-Row "Start-TcpRelay ping-pong $($k -replace '_us', '') (us) vs socat" (Format-Cell $q (Get-Ratio $q $s) 'N1') (Format-Cell $nq (Get-Ratio $nq $s) 'N1') "socat $(Format-Val $s 'N1')" '(reported)' '-'
        }
    }
}

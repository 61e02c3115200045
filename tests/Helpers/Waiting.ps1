# Waiting for conditions and capturing what a command wrote: bounded polls, never bare sleeps.

function ConvertTo-TimeSpan([object] $Value) {
    # Plain numbers mean seconds; [TimeSpan]10 would mean ten ticks.
    if ($Value -is [TimeSpan]) { return $Value }
    if ($Value -is [string] -and $Value -match '^\s*(\d+(\.\d+)?)\s*(ms|s)\s*$') {
        if ($Matches[3] -eq 'ms') { return [TimeSpan]::FromMilliseconds([double]$Matches[1]) }
        return [TimeSpan]::FromSeconds([double]$Matches[1])
    }
    if ($Value -is [string]) { return [TimeSpan]::Parse($Value) }
    [TimeSpan]::FromSeconds([double]$Value)
}

function Wait-Until {
    <#
    .SYNOPSIS
        Polls a condition every few tens of milliseconds until it is true; throws on timeout.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $Condition,
        # A TimeSpan, a number of seconds, or '10s' / '500ms'.
        [object] $Timeout = 10,
        [string] $Because,
        [int] $IntervalMilliseconds = 25
    )
    $limit = ConvertTo-TimeSpan $Timeout
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $ok = $false
        try { $ok = [bool](& $Condition) } catch { $ok = $false; $lastError = $_ }
        if ($ok) { return }
        if ($watch.Elapsed -ge $limit) {
            $what = if ($Because) { $Because } else { "{ $($Condition.ToString().Trim()) }" }
            $detail = if (Get-Variable lastError -ErrorAction Ignore) { " (last error: $lastError)" } else { '' }
            throw "Timed out after $limit waiting for $what$detail"
        }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
}

function Invoke-Captured {
    <#
    .SYNOPSIS
        Runs a script block; returns its output, every error record (non-terminating and
        terminating) and the elapsed time, without throwing.
    #>
    param([Parameter(Mandatory, Position = 0)] [scriptblock] $ScriptBlock)
    $output = [System.Collections.Generic.List[object]]::new()
    $errors = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        & $ScriptBlock 2>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { $errors.Add($_) } else { $output.Add($_) }
        }
    } catch {
        $errors.Add($_)
    }
    $watch.Stop()
    [pscustomobject]@{ Output = $output.ToArray(); Errors = $errors.ToArray(); Elapsed = $watch.Elapsed }
}

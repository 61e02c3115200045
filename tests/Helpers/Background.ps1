# Script blocks run in runspaces of their own, on other threads, with their output watchable.

function Start-BackgroundScript {
    <#
    .SYNOPSIS
        Runs a script block in its own runspace on another thread ([PowerShell] instance).
        Returns a handle for Wait-BackgroundScript. The script gets -ArgumentList.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $ScriptBlock,
        [object[]] $ArgumentList = @()
    )
    $ps = [PowerShell]::Create()
    $null = $ps.AddScript($ScriptBlock.ToString())
    foreach ($a in $ArgumentList) { $null = $ps.AddArgument($a) }
    # Output goes to a collection the test can watch while the script runs.
    $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
    $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]$null, $output)
    [pscustomobject]@{ PowerShell = $ps; Async = $async; Output = $output }
}

function Wait-BackgroundScript {
    <#
    .SYNOPSIS
        Waits for a background script; returns its output. On timeout it stops the script
        and throws. Always disposes the instance.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] $Handle,
        [object] $Timeout = 15
    )
    $ps = $Handle.PowerShell
    try {
        if (-not $Handle.Async.AsyncWaitHandle.WaitOne([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)) {
            $null = $ps.BeginStop($null, $null)
            throw "background script did not finish within $Timeout"
        }
        $null = $ps.EndInvoke($Handle.Async)
        foreach ($e in $ps.Streams.Error) { Write-Warning "background script error: $e" }
        , @($Handle.Output.ReadAll())
    } finally {
        if ($Handle.Async.IsCompleted) { $ps.Dispose() }
    }
}

function Stop-BackgroundScript {
    # Best-effort cleanup for AfterEach.
    param([Parameter(Position = 0)] [AllowNull()] $Handle)
    if ($null -eq $Handle) { return }
    try {
        if (-not $Handle.Async.IsCompleted) {
            $stop = $Handle.PowerShell.BeginStop($null, $null)
            $null = $stop.AsyncWaitHandle.WaitOne(5000)
        }
        if ($Handle.Async.IsCompleted) { $Handle.PowerShell.Dispose() }
    } catch { }
}

function Get-BackgroundOutput {
    <#
    .SYNOPSIS
        A snapshot of what a Start-BackgroundScript handle has output so far, without waiting.
        (Enumerating its PSDataCollection directly blocks until the script ends.)
    #>
    param([Parameter(Mandatory, Position = 0)] $Handle)
    $items = [System.Collections.Generic.List[object]]::new()
    $count = $Handle.Output.Count
    for ($i = 0; $i -lt $count; $i++) { $items.Add($Handle.Output[$i]) }
    , $items.ToArray()
}

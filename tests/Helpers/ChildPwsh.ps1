# Child pwsh processes: run to completion with optional standard input, bounded in time.

function Get-PwshLaunch {
    <#
    .SYNOPSIS
        How to start a child pwsh like this one, as FileName plus leading Arguments (from
        Get-PwshCommand in build/Pwsh.ps1, the one copy of that rule).
    #>
    $pwsh = @(Get-PwshCommand)
    [pscustomobject]@{ FileName = $pwsh[0]; Arguments = @($pwsh | Select-Object -Skip 1) }
}

function Invoke-ChildPwsh {
    <#
    .SYNOPSIS
        Runs a child pwsh with the given arguments (after -NoProfile -NonInteractive), optional
        standard input, and a timeout. Returns ExitCode, StdOut, StdErr, TimedOut, Elapsed.
    #>
    param(
        [Parameter(Mandatory)] [string[]] $ArgumentList,
        [string] $StandardInput,
        [object] $Timeout = 60,
        [string] $WorkingDirectory = (Get-Location).ProviderPath,
        [switch] $Interactive
    )
    $launch = Get-PwshLaunch
    $info = [System.Diagnostics.ProcessStartInfo]::new($launch.FileName)
    foreach ($a in $launch.Arguments) { $info.ArgumentList.Add($a) }
    $info.ArgumentList.Add('-NoProfile')
    if (-not $Interactive) { $info.ArgumentList.Add('-NonInteractive') }
    foreach ($a in $ArgumentList) { $info.ArgumentList.Add($a) }
    $info.UseShellExecute = $false
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.WorkingDirectory = $WorkingDirectory
    $info.Environment['NO_COLOR'] = '1'
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $process = [System.Diagnostics.Process]::Start($info)
    try {
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if ($PSBoundParameters.ContainsKey('StandardInput')) {
            $process.StandardInput.Write($StandardInput)
        }
        $process.StandardInput.Close()
        $timedOut = -not $process.WaitForExit([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)
        if ($timedOut) {
            try { $process.Kill($true) } catch { }
            $null = $process.WaitForExit(5000)
        } else {
            $process.WaitForExit()
        }
        $null = $stdout.Wait(5000); $null = $stderr.Wait(5000)
        [pscustomobject]@{
            ExitCode = if ($timedOut) { $null } else { $process.ExitCode }
            StdOut   = if ($stdout.IsCompleted) { $stdout.Result } else { '' }
            StdErr   = if ($stderr.IsCompleted) { $stderr.Result } else { '' }
            TimedOut = $timedOut
            Elapsed  = $watch.Elapsed
        }
    } finally {
        $process.Dispose()
    }
}

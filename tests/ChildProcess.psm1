# A child pwsh whose standard input stays open for the test to write to line by line, and
# whose output the test reads as it comes: for what must stream (Enter-TcpSession, the Demo).
# Every wait is bounded.

Set-StrictMode -Version 3.0
Import-Module "$PSScriptRoot/TestHelpers.psm1"

function Start-ChildPwsh {
    <#
    .SYNOPSIS
        Starts a child pwsh running -Code (a script file is written to the temp folder) or -File
        with -ArgumentList; returns a handle for Wait-ChildLine, Wait-ChildExit, Stop-ChildPwsh.
        With -Terminal the child's standard input is a terminal: util-linux `script` runs it on
        a pseudo-terminal and passes what the test writes on as typed keys.
    #>
    param([string] $Code, [string] $File, [string[]] $ArgumentList = @(), [switch] $Terminal)
    if ($Code) {
        $File = Join-Path ([IO.Path]::GetTempPath()) "pstcp-child-$([guid]::NewGuid().ToString('n')).ps1"
        Set-Content -LiteralPath $File -Value $Code
    }
    $launch = Get-PwshLaunch
    $command = @($launch.FileName) + @($launch.Arguments) + @('-NoProfile', '-NonInteractive', '-File', $File) + $ArgumentList
    if ($Terminal) {
        $shell = ($command | ForEach-Object { "'" + ($_ -replace "'", "'\''") + "'" }) -join ' '
        $info = [System.Diagnostics.ProcessStartInfo]::new('script')
        foreach ($a in '-qfec', $shell, '/dev/null') { $info.ArgumentList.Add($a) }
    } else {
        $info = [System.Diagnostics.ProcessStartInfo]::new($command[0])
        foreach ($a in $command | Select-Object -Skip 1) { $info.ArgumentList.Add($a) }
    }
    $info.UseShellExecute = $false
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.Environment['NO_COLOR'] = '1'
    $process = [System.Diagnostics.Process]::Start($info)
    $process.StandardInput.AutoFlush = $true
    $process.StandardInput.NewLine = "`n"
    [pscustomobject]@{
        Process = $process
        Input   = $process.StandardInput
        Lines   = [System.Collections.Generic.List[string]]::new()
        Pending = $process.StandardOutput.ReadLineAsync()
        Errors  = $process.StandardError.ReadToEndAsync()
        Script  = if ($Code) { $File } else { $null }
    }
}

function Wait-ChildLine {
    <#
    .SYNOPSIS
        Collects the child's output lines until one matches -Pattern and returns it; throws
        after -Timeout seconds or when the child's output ends first.
    #>
    param([Parameter(Mandatory, Position = 0)] $Child, [Parameter(Mandatory, Position = 1)] [string] $Pattern, [double] $Timeout = 20)
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $match = $Child.Lines | Where-Object { $_ -match $Pattern } | Select-Object -First 1
        if ($match) { return $match }
        $left = $Timeout - $watch.Elapsed.TotalSeconds
        if ($left -le 0) { throw "no output line matched '$Pattern' within $Timeout s; got:`n$($Child.Lines -join "`n")" }
        if ($Child.Pending.Wait([int][Math]::Min(200, $left * 1000))) {
            $line = $Child.Pending.Result
            if ($null -eq $line) {
                $null = $Child.Errors.Wait(5000)
                throw "the child's output ended before '$Pattern'; got:`n$($Child.Lines -join "`n")`n$($Child.Errors.Result)"
            }
            $Child.Lines.Add($line)
            $Child.Pending = $Child.Process.StandardOutput.ReadLineAsync()
        }
    }
}

function Wait-ChildExit {
    <#
    .SYNOPSIS
        Waits for the child to exit (killing it after -Timeout seconds); returns Exited,
        ExitCode, every output line and the standard error text.
    #>
    param([Parameter(Mandatory, Position = 0)] $Child, [double] $Timeout = 20)
    $exited = $Child.Process.WaitForExit([int]($Timeout * 1000))
    if (-not $exited) { try { $Child.Process.Kill($true) } catch { } ; $null = $Child.Process.WaitForExit(5000) }
    while ($Child.Pending.Wait(5000) -and $null -ne $Child.Pending.Result) {
        $Child.Lines.Add($Child.Pending.Result)
        $Child.Pending = $Child.Process.StandardOutput.ReadLineAsync()
    }
    $null = $Child.Errors.Wait(5000)
    [pscustomobject]@{
        Exited   = $exited
        ExitCode = if ($exited) { $Child.Process.ExitCode } else { $null }
        Lines    = @($Child.Lines)
        Errors   = if ($Child.Errors.IsCompleted) { $Child.Errors.Result } else { '' }
    }
}

function Stop-ChildPwsh {
    # Best-effort cleanup for AfterEach: kills the child if it still runs.
    param([Parameter(Position = 0)] [AllowNull()] $Child)
    if ($null -eq $Child) { return }
    try { if (-not $Child.Process.HasExited) { $Child.Process.Kill($true); $null = $Child.Process.WaitForExit(5000) } } catch { }
    $Child.Process.Dispose()
    if ($Child.Script) { Remove-Item -LiteralPath $Child.Script -ErrorAction SilentlyContinue }
}

Export-ModuleMember -Function Start-ChildPwsh, Wait-ChildLine, Wait-ChildExit, Stop-ChildPwsh

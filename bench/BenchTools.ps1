# Helpers shared by bench/Invoke-Benchmark.ps1, bench/Measure-PowerShell.ps1 and bench/Stress.ps1.
# Dot-source after setting $Root (the repository root): child processes start there.

# A path given by the user: absolute, relative to the current directory, or to the repo root.
function Resolve-UserPath([string] $Path, [string] $Default) {
    if (-not $Path) { return $Default }
    if ([IO.Path]::IsPathRooted($Path)) { return [IO.Path]::GetFullPath($Path) }
    $fromHere = [IO.Path]::GetFullPath($Path, (Get-Location).ProviderPath)
    if (Test-Path $fromHere) { return $fromHere }
    [IO.Path]::GetFullPath($Path, $Root)
}

# Get-PwshCommand: the pwsh to start children with (one copy, in build/Pwsh.ps1).
. (Join-Path $PSScriptRoot '../build/Pwsh.ps1')

# Every child started here, so a finally block can stop what is left.
$script:Children = [Collections.Generic.List[Diagnostics.Process]]::new()

function Start-Child([string] $FileName, [string[]] $ArgumentList, [string] $WorkingDirectory = $Root) {
    $psi = [Diagnostics.ProcessStartInfo]::new($FileName)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.WorkingDirectory = $WorkingDirectory
    $p = [Diagnostics.Process]::Start($psi)
    $script:Children.Add($p)
    $p
}

# Asks a child to end (an optional line, then end of input), and kills it after GraceMs.
function Stop-Child([Diagnostics.Process] $Process, [int] $GraceMs = 3000, [string] $StopLine) {
    if (-not $Process) { return }
    try {
        if (-not $Process.HasExited) {
            try {
                if ($StopLine) { $Process.StandardInput.WriteLine($StopLine) }
                $Process.StandardInput.Close()
            } catch { }
            if (-not $Process.WaitForExit($GraceMs)) { $Process.Kill($true); $null = $Process.WaitForExit(5000) }
        }
    } catch { }
    finally { $null = $script:Children.Remove($Process); $Process.Dispose() }
}

# Runs a command to completion (bounded by TimeoutSeconds): exit code, output, wall-clock ms.
function Invoke-Child([string] $FileName, [string[]] $ArgumentList, [int] $TimeoutSeconds = 60, [string] $WorkingDirectory = $Root) {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $p = Start-Child $FileName $ArgumentList $WorkingDirectory
    try {
        $p.StandardInput.Close()
        $out = $p.StandardOutput.ReadToEndAsync()
        $err = $p.StandardError.ReadToEndAsync()
        $timedOut = -not $p.WaitForExit($TimeoutSeconds * 1000)
        if ($timedOut) { $p.Kill($true); $null = $p.WaitForExit(5000) } else { $p.WaitForExit() }
        $ms = $sw.Elapsed.TotalMilliseconds
        $null = $out.Wait(5000); $null = $err.Wait(5000)
        [pscustomobject]@{
            ExitCode = if ($timedOut) { -1 } else { $p.ExitCode }
            TimedOut = $timedOut
            Ms       = $ms
            Stdout   = if ($out.IsCompletedSuccessfully) { $out.Result } else { '' }
            Stderr   = if ($err.IsCompletedSuccessfully) { $err.Result } else { '' }
        }
    } finally { Stop-Child $p 0 }
}

function Get-Median([double[]] $Values) {
    $s = @($Values | Sort-Object)
    if ($s.Count -eq 0) { return $null }
    $m = [int][Math]::Floor($s.Count / 2)
    if ($s.Count % 2) { [double]$s[$m] } else { ([double]$s[$m - 1] + [double]$s[$m]) / 2 }
}

# The first capture group of the first line of a file that matches, for machine facts.
function Get-FirstMatch([string] $Path, [string] $Pattern) {
    if (-not (Test-Path $Path)) { return $null }
    $m = Select-String -Path $Path -Pattern $Pattern | Select-Object -First 1
    if ($m) { $m.Matches[0].Groups[1].Value.Trim() } else { $null }
}

# How to start a child pwsh like this one: the one copy of it, dot-sourced by build.ps1,
# build/HelpBuilder.ps1, bench/BenchTools.ps1, tests/Help.Tests.ps1 and tests/TestHelpers.psm1.
# Children are needed because a loaded PSTcp.dll can't be unloaded: the build must be able to
# overwrite out/ next time.

# The command line that starts pwsh: its file name, then any leading arguments. Under
# `dotnet pwsh` this process is dotnet itself, so a child is `dotnet <PSHOME>/pwsh.dll`.
function Get-PwshCommand {
    $path = [System.Environment]::ProcessPath
    if ([System.IO.Path]::GetFileNameWithoutExtension($path) -eq 'dotnet') {
        return $path, (Join-Path $PSHOME 'pwsh.dll')
    }
    , $path
}

# Runs a child pwsh with these arguments, its output to this one's pipeline.
function Invoke-Pwsh {
    $pwsh = @(Get-PwshCommand)
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) @args
}

<#
.SYNOPSIS
    Runs the Pester tests in this (child) process and writes the counts as JSON for build.ps1.
#>
param(
    [Parameter(Mandatory)] [string] $Pester,
    [Parameter(Mandatory)] [string] $Tests,
    [string] $Filter = $(if ($env:PSTCP_TEST_FILTER) { $env:PSTCP_TEST_FILTER } else { '*' }),
    [Parameter(Mandatory)] [string] $Summary,
    # No ANSI colour codes: build.ps1's output is redirected (a log, CI).
    [switch] $PlainText
)

if ($PlainText) { $PSStyle.OutputRendering = 'PlainText' }
Import-Module $Pester
$config = New-PesterConfiguration
if ($PlainText) { $config.Output.RenderMode = 'Plaintext' }
$config.Run.Path = @(Get-ChildItem $Tests -Filter "$Filter.Tests.ps1" | ForEach-Object FullName)
if ($config.Run.Path.Value.Count -eq 0) {
    # Pester itself fails with a stack trace on an empty path: say what happened, and count it as a failure.
    Write-Host "No Pester file in $Tests matches '$Filter.Tests.ps1'."
    @{ Passed = 0; Failed = 1; Skipped = 0 } | ConvertTo-Json | Set-Content $Summary
    return
}
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$r = Invoke-Pester -Configuration $config
@{
    Passed  = $r.PassedCount
    Failed  = $r.FailedCount + $r.FailedBlocksCount + $r.FailedContainersCount
    Skipped = $r.SkippedCount
} | ConvertTo-Json | Set-Content $Summary

# Every PowerShell example in README.md really runs: each block in a fresh pwsh at the repo
# root, stopping at the first error. (The Pester example is run by MockingExample.Tests.ps1.)
BeforeDiscovery {
    $readme = Get-Content (Join-Path $PSScriptRoot '../README.md') -Raw
    $blocks = [regex]::Matches($readme, '(?s)```powershell\r?\n(.*?)```') | ForEach-Object { $_.Groups[1].Value }
    $examples = @($blocks | Where-Object { $_ -notmatch '\bDescribe\b' } | ForEach-Object -Begin { $i = 0 } -Process {
            $i++
            @{ Index = $i; Code = $_; Title = ($_ -split "`n" | Where-Object { $_.Trim() } | Select-Object -First 1).Trim() }
        })
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $root = (Resolve-Path "$PSScriptRoot/..").Path
}

Describe 'README examples' {
    It 'has examples to run' -TestCases @{ Count = $examples.Count } {
        $Count | Should -BeGreaterThan 3
    }

    It 'runs example <Index>: <Title>' -ForEach $examples {
        $script = Join-Path ([IO.Path]::GetTempPath()) "pstcp-readme-$PID-$Index.ps1"
        # The examples import ./out/PSTcp relative to the repo root; the tour's import is added
        # where an example relies on an earlier one having loaded the module.
        Set-Content -Path $script -Value ("`$ErrorActionPreference = 'Stop'`nSet-Location '$root'`nImport-Module '$root/out/PSTcp'`n" + $Code + "`nexit 0")
        try {
            $r = Invoke-ChildPwsh -ArgumentList '-File', $script -Timeout 60 -WorkingDirectory $root
            $because = "example $Index failed:`n$($r.StdErr)`n$($r.StdOut)"
            $r.TimedOut | Should -BeFalse -Because $because
            $r.ExitCode | Should -Be 0 -Because $because
            "$($r.StdErr)".Trim() | Should -BeNullOrEmpty -Because $because
        }
        finally {
            Remove-Item $script -ErrorAction SilentlyContinue
        }
    }
}

Describe "README's own-Pester-tests example" {
    It 'runs under Invoke-Pester from the repository root, as the README says, and passes' {
        $readme = Get-Content (Join-Path $root 'README.md') -Raw
        $blocks = @([regex]::Matches($readme, '(?s)```powershell\r?\n(.*?)```') | ForEach-Object { $_.Groups[1].Value } |
                Where-Object { $_ -match '\bDescribe\b' -and $_ -match 'Invoke-Pester -Path' })
        $blocks | Should -HaveCount 1
        $testFile = Join-Path $TestDrive 'Readme.Example.Tests.ps1'
        Set-Content -LiteralPath $testFile -Value $blocks[0]
        $pester = @(Get-ChildItem (Join-Path $root 'out/packages/pester') -Recurse -Filter Pester.psd1)[0].FullName
        $script = Join-Path $TestDrive 'run-readme-pester.ps1'
        Set-Content -LiteralPath $script -Value @"
Import-Module '$pester'
`$result = Invoke-Pester -Path '$testFile' -Output None -PassThru
"passed=`$(`$result.PassedCount) failed=`$(`$result.FailedCount)"
"@
        $r = Invoke-ChildPwsh -ArgumentList '-File', $script -Timeout 120 -WorkingDirectory $root
        $r.TimedOut | Should -BeFalse
        $r.StdOut | Should -Match 'passed=[1-9]\d* failed=0' -Because "$($r.StdOut)`n$($r.StdErr)"
    }
}

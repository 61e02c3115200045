#requires -Version 7.0
# A quiet build: no MSBuild "Build succeeded" banner in a task's output, and no ANSI colour
# codes in the test output once it is redirected (a log, CI). The children here run without
# NO_COLOR, as a user's shell would.

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:Root = (Resolve-Path "$PSScriptRoot/..").ProviderPath

    # Runs a child pwsh with redirected output and NO_COLOR unset; bounded in time.
    function Invoke-Redirected([string[]] $ArgumentList, [int] $TimeoutSeconds = 240) {
        $pwsh = @(Get-PwshCommand)
        $info = [System.Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive') + $ArgumentList) { $info.ArgumentList.Add($a) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.RedirectStandardInput = $true
        $info.WorkingDirectory = $Root
        $null = $info.Environment.Remove('NO_COLOR')
        $info.Environment['PSTCP_TEST_FILTER'] = '*'   # not this run's filter
        $process = [System.Diagnostics.Process]::Start($info)
        try {
            $process.StandardInput.Close()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            if (-not $process.WaitForExit($TimeoutSeconds * 1000)) { $process.Kill($true); throw "timed out: $ArgumentList" }
            $process.WaitForExit()
            [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout.Result + $stderr.Result }
        } finally { $process.Dispose() }
    }
}

Describe 'Quiet build' {
    It 'builds without the MSBuild banner or colour codes' {
        $r = Invoke-Redirected '-File', (Join-Path $Root 'build.ps1'), 'Build'
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $r.Output | Should -Not -Match 'Build succeeded'
        $r.Output | Should -Not -Match 'Warning\(s\)|Time Elapsed'
        $r.Output | Should -Not -Match "`e\["
        $r.Output | Should -Match 'Built .*out[/\\]PSTcp'
    }

    It 'writes Pester results without colour codes when the output is redirected' {
        $tests = Join-Path $TestDrive 'tests'
        $null = New-Item -ItemType Directory $tests
        Set-Content (Join-Path $tests 'Tiny.Tests.ps1') "Describe 'tiny' { It 'passes' { 1 | Should -Be 1 } }"
        $summary = Join-Path $TestDrive 'summary.json'
        $pester = @(Get-ChildItem (Join-Path $Root 'out/packages/pester') -Recurse -Filter Pester.psd1)[0].FullName
        $r = Invoke-Redirected '-File', (Join-Path $Root 'build/Invoke-PesterTests.ps1'), '-Pester', $pester, '-Tests', $tests,
            '-Summary', $summary, '-PlainText' -TimeoutSeconds 120
        $r.Output | Should -Match 'Tests Passed: 1'
        $r.Output | Should -Not -Match "`e\["
        (Get-Content $summary -Raw | ConvertFrom-Json).Passed | Should -Be 1
    }
}

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

# Issue 22: Demo and Test build only when an input changed since out/PSTcp was built (a stamp
# of the inputs' paths, lengths and write times in out/build-stamp.txt).
Describe 'Build skipped when nothing changed' {
    BeforeAll {
        $script:Dll = Join-Path $Root 'out/PSTcp/PSTcp.dll'
        # A run of the Test task that runs no test file: its build step is what is looked at.
        function Invoke-TestTask { Invoke-Redirected '-File', (Join-Path $Root 'build.ps1'), 'Test', '-TestFilter', 'NoFileIsNamedThis' }
    }

    It 'Demo and Test use out/PSTcp as it is when no input changed' {
        $null = Invoke-TestTask   # builds if the tree changed since the last build
        $before = (Get-Item $Dll).LastWriteTimeUtc
        $demo = Invoke-Redirected '-File', (Join-Path $Root 'build.ps1'), 'Demo'
        $demo.ExitCode | Should -Be 0 -Because $demo.Output
        $demo.Output | Should -Match 'is up to date'
        $demo.Output | Should -Not -Match 'Built '
        $test = Invoke-TestTask
        $test.Output | Should -Match 'is up to date'
        $test.Output | Should -Match "No Pester file .* matches 'NoFileIsNamedThis.Tests.ps1'"
        $test.ExitCode | Should -Not -Be 0
        (Get-Item $Dll).LastWriteTimeUtc | Should -Be $before
    }

    It 'Test builds again after a source changes' {
        # A module file, so that msbuild itself has nothing to compile: the stamp alone decides.
        $source = Get-Item (Join-Path $Root 'module/PSTcp.format.ps1xml')
        $source.LastWriteTimeUtc = [DateTime]::UtcNow
        $test = Invoke-TestTask
        $test.Output | Should -Match 'Built .*out[/\\]PSTcp'
        $test.Output | Should -Not -Match 'is up to date'
        # And once built, the next run skips again.
        (Invoke-TestTask).Output | Should -Match 'is up to date'
    }
}

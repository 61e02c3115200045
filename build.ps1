#requires -Version 7.0
<#
.SYNOPSIS
    Builds, tests and demonstrates PSTcp.
.DESCRIPTION
    Build    (default) compile the core and the cmdlets and assemble out/PSTcp, and the
             updatable help (HelpInfo.xml, .zip and .cab) in out/PSTcpHelp.
    Test     build (skipped when no input changed since the last build), run the xunit tests of the core and the Pester tests, print
             "Tests: N passed, N failed" and exit non-zero on any failure.
    Demo     the seed's scenario end to end: echo server, consumer job, client (builds first
             only when an input changed since the last build).
    Bench    benchmark PSTcp against a Go and a System.IO.Pipelines echo server (bench/).
             With -ServerCpus/-LoadCpus (or -Pinned): issue 22's table with the servers and the
             generators pinned apart (bench/run-table.sh), results in out/bench/table-<time>.
    Stress   10,000 connections and 1,000,000 lossless messages against one server,
             then the torture test (issue 19) for -TortureSeconds, with and without the pollers.
    Package  a versioned .nupkg of the module in out/package, installable with Install-PSResource.
    Clean    remove build output.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 Test
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Stress', 'Package', 'Clean')]
    [string] $Task = 'Build',

    # Configuration passed to dotnet build.
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Only run the Pester files whose name matches (e.g. 'Echo*').
    [string] $TestFilter = '*',

    # Stress: how long the torture test runs each way (the suite runs it 30 s each way).
    [int] $TortureSeconds = 300,

    # Bench: run issue 22's pinned table instead (bench/run-table.sh from the portable kit that
    # bench/Publish-Portable.sh builds into out/bench-kit): the servers on these CPUs (taskset's
    # list, e.g. 0-7), the generators on -LoadCpus. -Pinned alone splits the CPUs in half.
    [string] $ServerCpus,
    [string] $LoadCpus,
    [switch] $Pinned,
    # More arguments for bench/run-table.sh, in one string (e.g. '--rounds 3 --rows pipelined-64,churn').
    [string] $TableArgs
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'PSTcp'

# Get-PwshCommand and Invoke-Pwsh: how to start a child pwsh like this one.
. (Join-Path $Root 'build/Pwsh.ps1')

function Invoke-Native([string] $What, [scriptblock] $Command) {
    # To the host, not the pipeline: callers return values of their own.
    & $Command | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "$What failed with exit code $LASTEXITCODE" }
}

# What the module is built from: the sources (bin and obj aside), the module's files and
# help, the help builder, and the build settings at the root.
function Get-BuildInputs {
    $roots = 'src', 'module', 'build/Help' | ForEach-Object { Join-Path $Root $_ } | Where-Object { Test-Path $_ }
    foreach ($dir in $roots) {
        [System.IO.Directory]::EnumerateFiles($dir, '*', [System.IO.SearchOption]::AllDirectories) |
            Where-Object { $_ -notmatch '[/\\](bin|obj)[/\\]' }
    }
    'build.ps1', 'build/HelpBuilder.ps1', 'Directory.Build.props', 'Directory.Build.targets', 'Directory.Packages.props', 'global.json', 'NuGet.config' |
        ForEach-Object { Join-Path $Root $_ } | Where-Object { Test-Path $_ -PathType Leaf }
}

# One line per input (path, length, last write) and the configuration, hashed: a source added,
# removed, edited or touched changes it.
function Get-BuildFingerprint {
    $lines = foreach ($path in Get-BuildInputs) {
        $info = [System.IO.FileInfo]::new($path)
        '{0}|{1}|{2}' -f [System.IO.Path]::GetRelativePath($Root, $path).Replace('\', '/'), $info.Length, $info.LastWriteTimeUtc.Ticks
    }
    $text = "$Configuration`n" + (($lines | Sort-Object -CaseSensitive) -join "`n")
    [System.Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData([System.Text.Encoding]::UTF8.GetBytes($text)))
}

$BuildStamp = Join-Path $Out 'build-stamp.txt'

# Demo and Test: build only when an input changed since the last build of out/PSTcp (the stamp
# is written after a build succeeds, so a failed or interrupted build is redone).
function Invoke-BuildIfChanged {
    $fingerprint = Get-BuildFingerprint
    $built = (Test-Path (Join-Path $ModuleOut 'PSTcp.psd1')) -and (Test-Path (Join-Path $ModuleOut 'PSTcp.dll')) -and
        (Test-Path $BuildStamp) -and ((Get-Content -Raw $BuildStamp).Trim() -eq $fingerprint)
    if ($built) {
        Write-Host "$ModuleOut is up to date (no input changed since it was built)."
        return
    }
    Invoke-Build -Fingerprint $fingerprint
}

function Invoke-Build([string] $Fingerprint) {
    # Read before building: an input edited during the build makes the next one build again.
    if (-not $Fingerprint) { $Fingerprint = Get-BuildFingerprint }
    if (Test-Path $BuildStamp) { Remove-Item $BuildStamp }
    # msbuild, not `dotnet build`: the latter prints its "Build succeeded" banner even with
    # NoSummary. Quiet still shows warnings and errors.
    Invoke-Native 'build' {
        dotnet msbuild (Join-Path $Root 'src/PSTcp/PSTcp.csproj') -restore "-p:Configuration=$Configuration" -nologo -v:quiet -clp:NoSummary
    }
    $bin = Join-Path $Root "src/PSTcp/bin/$Configuration/netstandard2.0"
    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    $null = New-Item -ItemType Directory $ModuleOut
    # The module's own DLLs plus the netstandard2.0 packages the core needs on Windows PowerShell.
    Get-ChildItem $bin -Filter *.dll |
        Where-Object Name -NotIn 'System.Management.Automation.dll' |
        Copy-Item -Destination $ModuleOut
    Copy-Item (Join-Path $Root 'module/*') $ModuleOut -Recurse -Exclude 'help'
    # Compiled cmdlets need MAML help; it is generated from the markdown under module/help.
    $helpBuilder = Join-Path $Root 'build/HelpBuilder.ps1'
    if (Test-Path $helpBuilder) {
        & $helpBuilder -Source (Join-Path $Root 'module/help') -Destination (Join-Path $ModuleOut 'en-US')
        # Updatable help (HelpInfo.xml, the .zip and the .cab) that Update-Help -SourcePath installs.
        & (Join-Path $Root 'build/Help/Updatable.ps1') -ModulePath $ModuleOut -Destination (Join-Path $Out 'PSTcpHelp')
    }
    Set-Content -LiteralPath $BuildStamp -Value $Fingerprint
    Write-Host "Built $ModuleOut"
}

function Get-PesterPath {
    $packages = Join-Path $Out 'packages'
    $manifest = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
    if (-not (Test-Path $manifest)) {
        Invoke-Native 'restoring Pester' {
            dotnet restore (Join-Path $Root 'build/Pester.csproj') --packages $packages --nologo -v quiet
        }
    }
    $manifest
}

function Invoke-CoreTests {
    # xunit results are read back from TRX files so they count in the final line.
    $all = Invoke-XunitRun -Name 'core'
    # Linux connections wait for data through PSTcp's own epoll pollers; Windows and macOS
    # through .NET's engine (a one-byte peek). The socket tests run again with the pollers off
    # (PSTCP_EPOLL=0), so that path is tested here too.
    $socketTests = 'EchoServerTests', 'ClientTests', 'ReceivePathTests', 'ReadinessPollerTests', 'RelayTests', 'QueuedBlockTests', 'TortureTests', 'MetricsTests' |
        ForEach-Object { "FullyQualifiedName~PSTcp.Tests.$_" }
    $env:PSTCP_EPOLL = '0'
    try { $peek = Invoke-XunitRun -Name 'core-peek' -Filter ($socketTests -join '|') -NoBuild }
    finally { Remove-Item Env:PSTCP_EPOLL }
    [pscustomobject]@{
        Passed  = $all.Passed + $peek.Passed
        Failed  = $all.Failed + $peek.Failed
        Skipped = $all.Skipped + $peek.Skipped
    }
}

function Invoke-XunitRun([string] $Name, [string] $Filter, [switch] $NoBuild) {
    $trx = Join-Path $Out "test-results/$Name.trx"
    if (Test-Path $trx) { Remove-Item $trx }
    $extra = @(if ($Filter) { '--filter', $Filter }; if ($NoBuild) { '--no-build' })
    dotnet test (Join-Path $Root 'tests/PSTcp.Core.Tests/PSTcp.Core.Tests.csproj') -c $Configuration --nologo -v quiet -clp:NoSummary `
        --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal' @extra | Out-Host
    if (-not (Test-Path $trx)) { return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } }
    $counters = ([xml](Get-Content $trx -Raw)).TestRun.ResultSummary.Counters
    [pscustomobject]@{
        Passed  = [int]$counters.passed
        Failed  = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout
        Skipped = [int]$counters.notExecuted
    }
}

function Invoke-PesterTests {
    # Pester runs in a child pwsh: a loaded PSTcp.dll can't be unloaded, and the build must
    # be able to overwrite out/ next time.
    $pester = Get-PesterPath
    $summary = Join-Path $Out 'test-results/pester.json'
    if (Test-Path $summary) { Remove-Item $summary }
    # The filter travels in the environment: pwsh on Unix would glob a bare '*' argument.
    $env:PSTCP_TEST_FILTER = $TestFilter
    # The child's output is always a pipe; whether ours is redirected decides its colours.
    $plain = @(if ([Console]::IsOutputRedirected) { '-PlainText' })
    Invoke-Pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'build/Invoke-PesterTests.ps1') `
        -Pester $pester -Tests (Join-Path $Root 'tests') -Summary $summary @plain | Out-Host
    if (-not (Test-Path $summary)) { return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } }
    Get-Content $summary -Raw | ConvertFrom-Json
}

function Invoke-Test {
    Invoke-BuildIfChanged
    $null = New-Item -ItemType Directory -Force (Join-Path $Out 'test-results')
    $core = if ($TestFilter -eq '*') { Invoke-CoreTests } else { [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0 } }
    $pester = Invoke-PesterTests
    $passed = $core.Passed + $pester.Passed
    $failed = $core.Failed + $pester.Failed
    $skipped = $core.Skipped + $pester.Skipped
    Write-Host "xunit: $($core.Passed) passed, $($core.Failed) failed; Pester: $($pester.Passed) passed, $($pester.Failed) failed"
    Write-Host "Tests: $passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    Invoke-BuildIfChanged
    # The demo runs in a child pwsh so that its standard input is this process's.
    Invoke-Pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'build/Demo.ps1') -ModulePath $ModuleOut
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

function Invoke-Bench {
    if ($Pinned -or $ServerCpus -or $LoadCpus -or $TableArgs) {
        # The kit needs no module build: its echo host is compiled from the core's sources.
        $kit = Join-Path $Out 'bench-kit'
        Invoke-Native 'publishing the bench kit' { bash (Join-Path $Root 'bench/Publish-Portable.sh') $kit }
        $results = Join-Path $Out "bench/table-$(Get-Date -Format 'yyyyMMdd-HHmmss')"
        $extra = @(if ($ServerCpus) { '--server-cpus', $ServerCpus }; if ($LoadCpus) { '--load-cpus', $LoadCpus }
            if ($TableArgs) { $TableArgs.Trim() -split '\s+' })
        Invoke-Native 'the pinned table' { bash (Join-Path $kit 'run-table.sh') $results @extra }
        return
    }
    Invoke-Build
    & (Join-Path $Root 'bench/Invoke-Benchmark.ps1') -ModulePath $ModuleOut -OutDir (Join-Path $Out 'bench')
}

function Invoke-Stress {
    Invoke-Build
    # In a child pwsh: the stress script raises its open-file limit and loads the module itself.
    Invoke-Pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'bench/Stress.ps1') -ModulePath $ModuleOut
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    # The torture test, longer (a failing round prints its PSTCP_TORTURE_SEED to replay it).
    $env:PSTCP_TORTURE_SECONDS = "$TortureSeconds"
    try {
        $failed = 0
        foreach ($epoll in $null, '0') {
            if ($epoll) { $env:PSTCP_EPOLL = $epoll }
            $run = Invoke-XunitRun -Name "torture$epoll" -Filter 'FullyQualifiedName~PSTcp.Tests.TortureTests'
            $failed += $run.Failed
        }
    }
    finally { Remove-Item Env:PSTCP_TORTURE_SECONDS, Env:PSTCP_EPOLL -ErrorAction SilentlyContinue }
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Package {
    Invoke-Build
    & (Join-Path $Root 'build/Package.ps1') -ModulePath $ModuleOut -OutDir (Join-Path $Out 'package')
}

function Invoke-Clean {
    foreach ($dir in @($Out) + (Get-ChildItem $Root -Recurse -Directory -Include bin, obj | ForEach-Object FullName)) {
        if (Test-Path $dir) { Remove-Item $dir -Recurse -Force }
    }
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Test' { Invoke-Test }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'Stress' { Invoke-Stress }
    'Package' { Invoke-Package }
    'Clean' { Invoke-Clean }
}

#requires -Version 7.0
# Help online and updatable (SPEC "Operations and conventions"): every exported cmdlet has a
# HelpUri that Get-Help -Online opens, the manifest has HelpInfoURI and ProjectUri, the build's
# out/PSTcpHelp is what Update-Help -SourcePath installs in a fresh process, and about_PSTcp names
# every exported cmdlet within 80 columns. The cmdlets are the EXPORTED ones, never a list here,
# so a cmdlet added later is checked too.

BeforeDiscovery {
    $root = Split-Path $PSScriptRoot -Parent
    Import-Module (Join-Path $root 'out/PSTcp/PSTcp.psd1') -Force
    $script:CmdletNames = @(Get-Command -Module PSTcp -CommandType Cmdlet | ForEach-Object Name)
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:Root = Split-Path $PSScriptRoot -Parent
    $script:ModuleOut = Join-Path $Root 'out/PSTcp'
    $script:HelpOut = Join-Path $Root 'out/PSTcpHelp'
    Import-Module (Join-Path $ModuleOut 'PSTcp.psd1') -Force
    $script:Manifest = Import-PowerShellDataFile (Join-Path $ModuleOut 'PSTcp.psd1')
    $script:Exported = @(Get-Command -Module PSTcp -CommandType Cmdlet | ForEach-Object Name)

    # A child pwsh running $Code with these environment variables (the rest inherited); its
    # output, exit code and whether it timed out.
    function Invoke-ChildWithEnvironment([string] $Code, [hashtable] $Environment, [int] $TimeoutSeconds = 90) {
        $script = Join-Path $TestDrive "child-$([guid]::NewGuid().ToString('n')).ps1"
        Set-Content -LiteralPath $script -Value $Code -Encoding utf8
        $launch = Get-PwshLaunch
        $info = [Diagnostics.ProcessStartInfo]::new($launch.FileName)
        foreach ($a in @($launch.Arguments) + @('-NoProfile', '-NonInteractive', '-File', $script)) { $info.ArgumentList.Add($a) }
        $info.UseShellExecute = $false
        $info.RedirectStandardInput = $true
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.Environment['NO_COLOR'] = '1'
        foreach ($key in $Environment.Keys) { $info.Environment[$key] = $Environment[$key] }
        $process = [Diagnostics.Process]::Start($info)
        try {
            $process.StandardInput.Close()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            $exited = $process.WaitForExit($TimeoutSeconds * 1000)
            if (-not $exited) { $process.Kill($true) }
            $process.WaitForExit()
            [pscustomobject]@{
                TimedOut = -not $exited
                ExitCode = if ($exited) { $process.ExitCode } else { $null }
                StdOut   = $stdout.GetAwaiter().GetResult()
                StdErr   = $stderr.GetAwaiter().GetResult()
            }
        }
        finally { $process.Dispose() }
    }

    # Under `dotnet pwsh`, dotnet itself needs a home of its own when HOME moves.
    $script:DotnetHome = if ($env:DOTNET_CLI_HOME) { $env:DOTNET_CLI_HOME } else { [Environment]::GetFolderPath('UserProfile') }
}

Describe 'HelpUri of <_>' -ForEach $CmdletNames {
    BeforeAll { $name = $_ }

    It 'is an absolute https URI ending in its help source, Verb-Noun.md' {
        $uri = (Get-Command $name).HelpUri
        $uri | Should -Not -BeNullOrEmpty
        $parsed = $null
        [Uri]::TryCreate($uri, [UriKind]::Absolute, [ref] $parsed) | Should -BeTrue
        $parsed.Scheme | Should -Be 'https'
        $uri | Should -BeLike "*/$name.md"
        Test-Path (Join-Path $Root "module/help/$name.md") | Should -BeTrue -Because 'the URI names the markdown help source'
    }

    It 'shares one base with ProjectUri' {
        (Get-Command $name).HelpUri | Should -BeLike "$($Manifest.PrivateData.PSData.ProjectUri)/*"
    }

    It "is the first related link (Online Version) in its help, which Get-Help -Online opens" {
        $links = @((Get-Help $name).relatedLinks.navigationLink)
        $links[0].uri | Should -Be (Get-Command $name).HelpUri
    }
}

Describe 'Get-Help -Online' {
    It 'opens the HelpUri of every exported cmdlet (a stand-in xdg-open records it)' -Skip:(-not $IsLinux) {
        # .NET opens a URI on Linux with the first xdg-open on PATH: this one writes it down.
        $bin = Join-Path $TestDrive 'bin'
        $null = New-Item -ItemType Directory -Force $bin
        $opened = Join-Path $TestDrive 'opened.txt'
        Set-Content -LiteralPath (Join-Path $bin 'xdg-open') -Value "#!/bin/sh`nprintf '%s\n' `"`$1`" >> '$opened'`n" -NoNewline
        chmod +x (Join-Path $bin 'xdg-open')
        $code = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$($ModuleOut -replace "'", "''")'
foreach (`$name in (Get-Command -Module PSTcp -CommandType Cmdlet).Name) { Get-Help `$name -Online }
"@
        $r = Invoke-ChildWithEnvironment $code @{ PATH = $bin + [IO.Path]::PathSeparator + $env:PATH }
        $r.TimedOut | Should -BeFalse
        $r.ExitCode | Should -Be 0 -Because $r.StdErr
        $expected = @($Exported | ForEach-Object { (Get-Command $_).HelpUri } | Sort-Object)
        # The openers run detached: wait until each has written its line.
        Wait-Until { (Test-Path $opened) -and @(Get-Content $opened).Count -ge $expected.Count } -Timeout 30 -Because 'every URI opened'
        @(Get-Content $opened | Sort-Object) | Should -Be $expected
    }
}

Describe 'The manifest' {
    It 'has ProjectUri, and HelpInfoURI under the same project' {
        $project = $Manifest.PrivateData.PSData.ProjectUri
        $project | Should -Match '^https://'
        $Manifest.HelpInfoURI | Should -BeLike "$project/*"
        (Get-Module PSTcp).HelpInfoUri | Should -Be $Manifest.HelpInfoURI
    }
}

Describe 'Updatable help (out/PSTcpHelp)' {
    BeforeAll {
        $guid = $Manifest.GUID
        $info = Join-Path $HelpOut "PSTcp_${guid}_HelpInfo.xml"
    }

    It 'has HelpInfo.xml with en-US at the module version, pointing at HelpInfoURI' {
        Test-Path $info | Should -BeTrue
        $xml = [xml](Get-Content $info -Raw)
        $xml.HelpInfo.HelpContentURI | Should -Be $Manifest.HelpInfoURI
        $culture = $xml.HelpInfo.SupportedUICultures.UICulture | Where-Object UICultureName -EQ 'en-US'
        [version]$culture.UICultureVersion | Should -Be ([version]"$($Manifest.ModuleVersion).0")
    }

    It 'has a .zip (Linux, macOS) with the MAML and every about topic at its root' {
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead((Join-Path $HelpOut "PSTcp_${guid}_en-US_HelpContent.zip"))
        try { $names = @($zip.Entries.FullName) } finally { $zip.Dispose() }
        $names | Should -Contain 'PSTcp.dll-Help.xml'
        foreach ($about in Get-ChildItem (Join-Path $ModuleOut 'en-US') -Filter 'about_*.help.txt') { $names | Should -Contain $about.Name }
    }

    It 'has a .cab (Windows) with the same files' -Skip:(-not (Get-Command gcab -ErrorAction Ignore)) {
        $cab = Join-Path $HelpOut "PSTcp_${guid}_en-US_HelpContent.cab"
        Test-Path $cab | Should -BeTrue
        $names = @(gcab --list $cab | ForEach-Object Trim | Where-Object { $_ })
        $names | Should -Contain 'PSTcp.dll-Help.xml'
        foreach ($about in Get-ChildItem (Join-Path $ModuleOut 'en-US') -Filter 'about_*.help.txt') { $names | Should -Contain $about.Name }
    }

    It 'Update-Help -SourcePath installs it in a fresh pwsh (CurrentUser, in a temporary home), and Get-Help reads it' -Skip:$IsWindows {
        # A copy of the module WITHOUT its en-US folder, so the help Get-Help finds afterwards
        # can only be what Update-Help installed; HOME and XDG_DATA_HOME point into TestDrive.
        $home_ = Join-Path $TestDrive 'home'
        $modules = Join-Path $TestDrive 'modules'
        $copy = Join-Path $modules 'PSTcp'
        $null = New-Item -ItemType Directory -Force $home_, $modules
        Copy-Item $ModuleOut $copy -Recurse
        Remove-Item (Join-Path $copy 'en-US') -Recurse -Force
        $data = Join-Path $home_ '.local/share'
        $code = @"
`$ErrorActionPreference = 'Stop'
`$env:PSModulePath = '$modules' + [IO.Path]::PathSeparator + `$env:PSModulePath
if ((Get-Help Start-TcpEchoServer).Synopsis -notlike '*Start-TcpEchoServer *') { throw 'help was there before Update-Help' }
Update-Help -Module PSTcp -SourcePath '$HelpOut' -Scope CurrentUser -UICulture en-US -Force
'SYNOPSIS=' + (Get-Help Start-TcpEchoServer).Synopsis
'ABOUT=' + ((Get-Help about_PSTcp | Out-String) -split "``n" | Where-Object { `$_ -match 'Start-TcpEchoServer' } | Select-Object -First 1)
"@
        $r = Invoke-ChildWithEnvironment $code @{ HOME = $home_; XDG_DATA_HOME = $data; DOTNET_CLI_HOME = $DotnetHome }
        $r.TimedOut | Should -BeFalse
        $r.ExitCode | Should -Be 0 -Because "$($r.StdErr)`n$($r.StdOut)"
        $r.StdOut | Should -Match 'SYNOPSIS=Starts a TCP echo server'
        $r.StdOut | Should -Match 'ABOUT=.*Start-TcpEchoServer'
        # Installed under the temporary home only.
        @(Get-ChildItem $data -Recurse -Filter 'PSTcp.dll-Help.xml').Count | Should -Be 1
        @(Get-ChildItem $data -Recurse -Filter 'PSTcp_*_HelpInfo.xml').Count | Should -Be 1
    }
}

Describe 'about_PSTcp' {
    BeforeAll {
        $about = Join-Path $ModuleOut 'en-US/about_PSTcp.help.txt'
        $lines = @(Get-Content $about)
    }

    It 'names every exported cmdlet in its cmdlet table' {
        # The table: from "The cmdlets:" to the next section heading (a line in capitals).
        $text = Get-Content $about -Raw
        $table = [regex]::Match($text, '(?s)The cmdlets:(.*?)\n[A-Z][A-Z ,]+\r?\n').Groups[1].Value
        $table | Should -Not -BeNullOrEmpty
        $missing = @($Exported | Where-Object { $table -notmatch "(?m)^\s+$([regex]::Escape($_))\s" })
        $missing | Should -BeNullOrEmpty -Because 'about_PSTcp''s table lists every exported cmdlet'
    }

    It 'has no line over 80 columns' {
        $long = @($lines | Where-Object { $_.Length -gt 80 } | ForEach-Object { "$($_.Length): $_" })
        $long | Should -BeNullOrEmpty
    }

    It 'is what Get-Help about_PSTcp shows' {
        (Get-Help about_PSTcp | Out-String) | Should -Match 'Register-TcpShouldOperator'
    }
}

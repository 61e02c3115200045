# The module as a package: build/Package.ps1 makes a versioned .nupkg of out/PSTcp, which
# PSResourceGet installs from a temporary local repository, and the installed copy works in a
# fresh pwsh. Nothing here touches the network, the user's module folders, or (once the test
# is over) the user's PSResourceGet repository list.

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $root = (Resolve-Path "$PSScriptRoot/..").ProviderPath
    $modulePath = Join-Path $root 'out/PSTcp'
    $manifest = Import-PowerShellDataFile (Join-Path $modulePath 'PSTcp.psd1')
    $psData = $manifest.PrivateData.PSData
    [version] $v = $manifest.ModuleVersion
    # NuGet's normalized form, as Package.ps1 names the file.
    $version = '{0}.{1}.{2}' -f $v.Major, $v.Minor, [math]::Max($v.Build, 0)
    if ($v.Revision -gt 0) { $version += ".$($v.Revision)" }
    if ($psData.ContainsKey('Prerelease') -and $psData.Prerelease) { $version += "-$($psData.Prerelease)" }

    # PSResourceGet keeps its repositories in a user-level file. Remember it byte for byte
    # before any PSResourceGet cmdlet runs (the first one creates it), to put it back after.
    $repoFile = Join-Path ([Environment]::GetFolderPath('LocalApplicationData')) 'PSResourceGet/PSResourceRepository.xml'
    $repoDirExisted = Test-Path -LiteralPath (Split-Path $repoFile)
    $repoFileBefore = if (Test-Path -LiteralPath $repoFile) { , [IO.File]::ReadAllBytes($repoFile) } else { $null }
    function Restore-RepositoryFile {
        if ($null -ne $repoFileBefore) {
            $now = if (Test-Path -LiteralPath $repoFile) { [IO.File]::ReadAllBytes($repoFile) } else { $null }
            if ($null -eq $now -or [Convert]::ToBase64String($now) -ne [Convert]::ToBase64String($repoFileBefore)) {
                [IO.File]::WriteAllBytes($repoFile, $repoFileBefore)
            }
        } else {
            Remove-Item -LiteralPath $repoFile -Force -ErrorAction SilentlyContinue
            $dir = Split-Path $repoFile
            if (-not $repoDirExisted -and (Test-Path -LiteralPath $dir) -and -not (Get-ChildItem -LiteralPath $dir -Force)) {
                Remove-Item -LiteralPath $dir -Force
            }
        }
    }

    $repoName = "PSTcpTest$([guid]::NewGuid().ToString('N').Substring(0, 12))"
    $feed = Join-Path $TestDrive 'feed'
    $installRoot = Join-Path $TestDrive 'modules'
    $null = New-Item -ItemType Directory $installRoot
    # Built through the TestDrive: drive, as a user would pass any PowerShell path.
    $package = & "$root/build/Package.ps1" -ModulePath $modulePath -OutDir 'TestDrive:/feed'
}

AfterAll {
    # Safety net for a test that failed half-way; the install test restores on its own.
    if (Get-Command Unregister-PSResourceRepository -ErrorAction Ignore) {
        Unregister-PSResourceRepository -Name $repoName -ErrorAction SilentlyContinue
    }
    Restore-RepositoryFile
}

Describe 'build/Package.ps1' {
    It 'writes PSTcp.<version>.nupkg into OutDir and outputs its path' {
        $package | Should -HaveCount 1
        $package | Should -Be (Join-Path $feed "PSTcp.$version.nupkg")
        Test-Path -LiteralPath $package | Should -BeTrue
        @(Get-ChildItem $feed).Name | Should -Be "PSTcp.$version.nupkg"
    }

    It 'holds the module files at the package root, with the NuGet/OPC parts' {
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($package)
        try { $entries = @($zip.Entries.FullName) } finally { $zip.Dispose() }
        $entries | Should -Contain 'PSTcp.nuspec'
        $entries | Should -Contain '[Content_Types].xml'
        $entries | Should -Contain '_rels/.rels'
        foreach ($file in Get-ChildItem $modulePath -Recurse -File) {
            $entries | Should -Contain ([IO.Path]::GetRelativePath($modulePath, $file.FullName).Replace('\', '/'))
        }
    }

    It 'carries the manifest metadata: version, authors, description, release notes, tags' {
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($package)
        try {
            $reader = [IO.StreamReader]::new($zip.GetEntry('PSTcp.nuspec').Open())
            try { [xml] $nuspec = $reader.ReadToEnd() } finally { $reader.Dispose() }
        } finally { $zip.Dispose() }
        $meta = $nuspec.package.metadata
        $meta.id | Should -Be 'PSTcp'
        $meta.version | Should -Be $version
        $meta.authors | Should -Be $manifest.Author
        $meta.description | Should -Be $manifest.Description
        # XML reads line ends as LF.
        $meta.releaseNotes | Should -Be ($psData.ReleaseNotes -replace '\r\n', "`n")
        $tags = $meta.tags -split ' '
        $tags | Should -Contain 'PSModule'
        $tags | Should -Contain 'PSIncludes_Cmdlet'
        foreach ($tag in $psData.Tags) { $tags | Should -Contain $tag }
        foreach ($cmdlet in $manifest.CmdletsToExport) {
            $tags | Should -Contain "PSCmdlet_$cmdlet"
            $tags | Should -Contain "PSCommand_$cmdlet"
        }
        if ($psData.ContainsKey('LicenseUri')) { $meta.licenseUrl | Should -Be $psData.LicenseUri }
    }

    It 'ships a manifest with its publishing fields filled in truthfully' {
        { Test-ModuleManifest (Join-Path $modulePath 'PSTcp.psd1') -ErrorAction Stop } | Should -Not -Throw
        $manifest.Author | Should -Not -BeNullOrEmpty
        $manifest.Description | Should -Not -BeNullOrEmpty
        $psData.ReleaseNotes | Should -Not -BeNullOrEmpty
        @($psData.Tags).Count | Should -BeGreaterThan 0
        foreach ($key in 'LicenseUri', 'ProjectUri', 'IconUri') {
            if ($psData.ContainsKey($key)) { $psData[$key] | Should -Match '^https://' -Because "$key must be a real address" }
        }
        # A license URI names a license the repository actually carries.
        if ($psData.ContainsKey('LicenseUri') -and $psData.LicenseUri -match 'MIT') {
            Get-Content (Join-Path $root 'LICENSE') -Raw | Should -Match 'MIT License'
        }
    }

    It 'refuses a manifest with a placeholder or a missing field' {
        $copy = Join-Path $TestDrive 'bad/PSTcp'
        $null = New-Item -ItemType Directory $copy
        Copy-Item "$modulePath/*" $copy -Recurse
        $psd1 = Join-Path $copy 'PSTcp.psd1'
        (Get-Content $psd1 -Raw) -replace "(?m)^(\s*Author\s*=\s*)'[^']*'", "`$1'TODO'" | Set-Content $psd1
        { & "$root/build/Package.ps1" -ModulePath $copy -OutDir (Join-Path $TestDrive 'bad-out') } |
            Should -Throw '*Author*placeholder*'
        Test-Path (Join-Path $TestDrive 'bad-out/*.nupkg') | Should -BeFalse
    }
}

Describe 'Installing the package with PSResourceGet' {
    It 'installs with Save-PSResource from a temporary local repository and leaves the repository list as it was' {
        Import-Module Microsoft.PowerShell.PSResourceGet -ErrorAction Stop
        try {
            Register-PSResourceRepository -Name $repoName -Uri $feed -Trusted
            # The file watched for restoring is the one PSResourceGet really uses.
            Get-Content -LiteralPath $repoFile -Raw | Should -Match $repoName

            $found = Find-PSResource -Name PSTcp -Repository $repoName
            $found.Version.ToString() | Should -Be ([version]$manifest.ModuleVersion).ToString(3)
            $found.Author | Should -Be $manifest.Author

            # Save-PSResource installs into a given folder, never into the user's modules.
            $saved = Save-PSResource -Name PSTcp -Repository $repoName -Path $installRoot -TrustRepository -PassThru
            $saved.Name | Should -Be 'PSTcp'
        } finally {
            Unregister-PSResourceRepository -Name $repoName -ErrorAction SilentlyContinue
            Restore-RepositoryFile
        }
        $installed = Join-Path $installRoot "PSTcp/$(([version]$manifest.ModuleVersion).ToString(3))"
        Test-Path (Join-Path $installed 'PSTcp.psd1') | Should -BeTrue
        Test-Path (Join-Path $installed 'PSTcp.dll') | Should -BeTrue
        # Packaging parts are not module files.
        Test-Path (Join-Path $installed '_rels') | Should -BeFalse

        if ($null -eq $repoFileBefore) {
            Test-Path -LiteralPath $repoFile | Should -BeFalse
        } else {
            [Convert]::ToBase64String([IO.File]::ReadAllBytes($repoFile)) | Should -Be ([Convert]::ToBase64String($repoFileBefore))
        }
    }

    It 'imports the installed module in a new pwsh and echoes a line through it' {
        Test-Path (Join-Path $installRoot 'PSTcp') | Should -BeTrue -Because 'the previous test installed it'
        $script = @'
param($InstallRoot)
$ErrorActionPreference = 'Stop'
$env:PSModulePath = $InstallRoot + [IO.Path]::PathSeparator + $env:PSModulePath
Import-Module PSTcp
"base=$((Get-Module PSTcp).ModuleBase)"
$server = Start-TcpEchoServer -Port 0
$client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
Send-TcpLine -Connection $client -Line 'hello from the package'
$echo = Receive-TcpMessage -Connection $client -Count 1 -Timeout 00:00:10
"echo=$($echo.Text)"
$client | Disconnect-TcpEndpoint
$server | Stop-TcpServer
'@
        $scriptFile = Join-Path $TestDrive 'roundtrip.ps1'
        Set-Content -LiteralPath $scriptFile -Value $script
        $r = Invoke-ChildPwsh -ArgumentList '-File', $scriptFile, '-InstallRoot', $installRoot -Timeout 30
        $r.TimedOut | Should -BeFalse
        $r.StdErr | Should -BeNullOrEmpty
        $r.ExitCode | Should -Be 0
        $lines = $r.StdOut -split '\r?\n'
        $lines | Should -Contain "base=$(Join-Path $installRoot "PSTcp/$(([version]$manifest.ModuleVersion).ToString(3))")"
        $lines | Should -Contain 'echo=hello from the package'
    }
}

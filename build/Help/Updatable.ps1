#requires -Version 7.0
<#
.SYNOPSIS
    Makes PSTcp's updatable help: what Update-Help reads, from the module's built help.
.DESCRIPTION
    Writes, into -Destination (the build's out/PSTcpHelp):

        PSTcp_<GUID>_HelpInfo.xml                  the culture and help version on offer
        PSTcp_<GUID>_<culture>_HelpContent.zip     the content PowerShell 7 reads on Linux and macOS
        PSTcp_<GUID>_<culture>_HelpContent.cab     the content Windows reads (gcab, or makecab on
                                                   Windows; skipped with a warning when neither is there)

    Each content file holds the culture folder's MAML (PSTcp.dll-Help.xml) and about_*.help.txt
    files at its root. The help version is the module's version (four parts). Publish the folder
    at the manifest's HelpInfoURI (each release's assets), or install it offline:

        Update-Help -Module PSTcp -SourcePath ./out/PSTcpHelp -Force
.EXAMPLE
    ./build/Help/Updatable.ps1 -ModulePath ./out/PSTcp -Destination ./out/PSTcpHelp
#>
[CmdletBinding()]
param(
    # The built module folder (PSTcp.psd1 and its culture folders).
    [Parameter(Mandatory)]
    [string] $ModulePath,

    [Parameter(Mandatory)]
    [string] $Destination
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Add-Type -AssemblyName System.IO.Compression.FileSystem

$ModulePath = (Resolve-Path -LiteralPath $ModulePath).Path
$name = 'PSTcp'
$manifest = Import-PowerShellDataFile (Join-Path $ModulePath "$name.psd1")
$guid = $manifest.GUID
if (-not $manifest.ContainsKey('HelpInfoURI') -or -not $manifest.HelpInfoURI) { throw "Updatable help: $name.psd1 has no HelpInfoURI." }
$version = [version]$manifest.ModuleVersion
$helpVersion = [version]::new($version.Major, $version.Minor, [Math]::Max(0, $version.Build), [Math]::Max(0, $version.Revision)).ToString()

if (Test-Path -LiteralPath $Destination) { Remove-Item -LiteralPath $Destination -Recurse -Force }
$null = New-Item -ItemType Directory $Destination
$Destination = (Resolve-Path -LiteralPath $Destination).Path

# Culture folders: those holding the MAML (en-US today).
$cultures = @(Get-ChildItem -LiteralPath $ModulePath -Directory | Where-Object { Test-Path (Join-Path $_.FullName "$name.dll-Help.xml") })
if (-not $cultures) { throw "Updatable help: no <culture>/$name.dll-Help.xml under $ModulePath; build the help first." }

$cab = Get-Command gcab -CommandType Application -ErrorAction Ignore | Select-Object -First 1
$makecab = if (-not $cab) { Get-Command makecab.exe -CommandType Application -ErrorAction Ignore | Select-Object -First 1 }

foreach ($culture in $cultures) {
    $files = @(Get-ChildItem -LiteralPath $culture.FullName -File | Where-Object { $_.Name -like '*-Help.xml' -or $_.Name -like 'about_*.help.txt' } | Sort-Object Name)
    $base = Join-Path $Destination "${name}_${guid}_$($culture.Name)_HelpContent"

    # The zip, with the files at its root.
    $zip = [System.IO.Compression.ZipFile]::Open("$base.zip", [System.IO.Compression.ZipArchiveMode]::Create)
    try {
        foreach ($file in $files) {
            $null = [System.IO.Compression.ZipFileExtensions]::CreateEntryFromFile($zip, $file.FullName, $file.Name, [System.IO.Compression.CompressionLevel]::Optimal)
        }
    }
    finally { $zip.Dispose() }

    # The cab, with the files at its root too.
    if ($cab) {
        $output = & $cab.Source --create --nopath --zip "$base.cab" @($files.FullName) 2>&1
        if ($LASTEXITCODE -ne 0) { throw "Updatable help: gcab failed ($LASTEXITCODE): $output" }
    }
    elseif ($makecab) {
        $ddf = Join-Path $Destination 'help.ddf'
        $lines = @('.OPTION EXPLICIT', '.Set CabinetNameTemplate=' + (Split-Path "$base.cab" -Leaf), ".Set DiskDirectoryTemplate=$Destination",
            '.Set Cabinet=on', '.Set Compress=on', '.Set CompressionType=MSZIP') + @($files | ForEach-Object { '"' + $_.FullName + '"' })
        Set-Content -LiteralPath $ddf -Value $lines
        $output = & $makecab.Source /F $ddf 2>&1
        $code = $LASTEXITCODE
        Remove-Item -LiteralPath $ddf, (Join-Path $PWD 'setup.inf'), (Join-Path $PWD 'setup.rpt') -ErrorAction Ignore
        if ($code -ne 0) { throw "Updatable help: makecab failed ($code): $output" }
    }
    else {
        Write-Warning "Updatable help: neither gcab nor makecab is installed; no .cab for Windows was made (install gcab)."
    }
}

# HelpInfo.xml: which cultures, at which version, and where the content lives.
$ns = 'http://schemas.microsoft.com/powershell/help/2010/05'
$settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false) }
$w = [Xml.XmlWriter]::Create((Join-Path $Destination "${name}_${guid}_HelpInfo.xml"), $settings)
try {
    $w.WriteStartDocument()
    $w.WriteStartElement('HelpInfo', $ns)
    $w.WriteElementString('HelpContentURI', $ns, $manifest.HelpInfoURI)
    $w.WriteStartElement('SupportedUICultures', $ns)
    foreach ($culture in $cultures) {
        $w.WriteStartElement('UICulture', $ns)
        $w.WriteElementString('UICultureName', $ns, $culture.Name)
        $w.WriteElementString('UICultureVersion', $ns, $helpVersion)
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
    $w.WriteEndDocument()
}
finally { $w.Dispose() }
Write-Verbose "Updatable help for $($cultures.Name -join ', ') (version $helpVersion) written to $Destination"

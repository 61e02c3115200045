#requires -Version 7.0
<#
.SYNOPSIS
    Packs the built module into a versioned .nupkg that Install-PSResource, Save-PSResource and
    Install-Module can install from a local file repository.
.DESCRIPTION
    The package is written by this script (no repository, no network, and no change to the
    user's PSResourceGet or PowerShellGet configuration): an OPC/NuGet zip with the module's
    files at its root, PSTcp.nuspec, [Content_Types].xml, _rels/.rels and a core-properties
    part, as the gallery tools produce it. Metadata comes from the module manifest: id, version
    (with PSData.Prerelease if set), authors, owners (CompanyName), description, copyright,
    release notes, license/project/icon URIs when present, dependencies from RequiredModules,
    and tags: PSModule, the manifest's tags, PSIncludes_Cmdlet and PSCmdlet_/PSCommand_ per
    exported cmdlet (and the like for functions).

    The manifest is checked first: a missing or placeholder author, description, tag list or
    release notes, or a URI that is not absolute http(s), stops the build.

    The package's full path is written to the pipeline.
.EXAMPLE
    ./build/Package.ps1 -ModulePath out/PSTcp -OutDir out/package

    # then, from any pwsh 7.4+ (PSResourceGet ships with it):
    Register-PSResourceRepository -Name PSTcpLocal -Uri (Resolve-Path out/package) -Trusted
    Install-PSResource PSTcp -Repository PSTcpLocal      # or Save-PSResource ... -Path <dir>
    Unregister-PSResourceRepository -Name PSTcpLocal
#>
[CmdletBinding()]
param(
    # The built module folder (out/PSTcp): it must hold <name>.psd1.
    [Parameter(Mandatory)] [string] $ModulePath,
    # Where the .nupkg goes; created if missing. A package of the same version is replaced.
    [Parameter(Mandatory)] [string] $OutDir,
    # A license file to ship at the package root (and so in the installed module folder);
    # the repository's LICENSE by default, left out when it does not exist.
    [string] $LicensePath = (Join-Path $PSScriptRoot '../LICENSE')
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Add-Type -AssemblyName System.IO.Compression

# ---- Read and check the manifest ---------------------------------------------------------

$ModulePath = (Resolve-Path -LiteralPath $ModulePath).ProviderPath
$name = Split-Path $ModulePath -Leaf
$manifestPath = Join-Path $ModulePath "$name.psd1"
if (-not (Test-Path -LiteralPath $manifestPath)) { throw "No module manifest at $manifestPath" }
# Data only: the module's DLL is never loaded into the build process.
$manifest = Import-PowerShellDataFile -LiteralPath $manifestPath

function Get-Entry([hashtable] $Table, [string] $Key) {
    if ($null -ne $Table -and $Table.ContainsKey($Key)) { $Table[$Key] } else { $null }
}

$psData = Get-Entry (Get-Entry $manifest 'PrivateData') 'PSData'
$problems = [System.Collections.Generic.List[string]]::new()
$placeholder = '(?i)\b(todo|tbd|fixme|placeholder|lorem|changeme|your ?name|unknown)\b|example\.(com|org|net)|^\s*<.*>\s*$'

function Test-Text([string] $What, [object] $Value) {
    if ($null -eq $Value -or [string]::IsNullOrWhiteSpace([string]$Value)) { $problems.Add("$What is missing"); return }
    if ([string]$Value -match $placeholder) { $problems.Add("$What looks like a placeholder: '$Value'") }
}

[version] $moduleVersion = $null
if (-not [version]::TryParse([string](Get-Entry $manifest 'ModuleVersion'), [ref]$moduleVersion)) {
    $problems.Add("ModuleVersion '$(Get-Entry $manifest 'ModuleVersion')' is not a version")
}
Test-Text 'Author' (Get-Entry $manifest 'Author')
Test-Text 'Description' (Get-Entry $manifest 'Description')
Test-Text 'PrivateData.PSData.ReleaseNotes' (Get-Entry $psData 'ReleaseNotes')
$manifestTags = @(Get-Entry $psData 'Tags' | Where-Object { $_ })
if ($manifestTags.Count -eq 0) { $problems.Add('PrivateData.PSData.Tags is missing') }
foreach ($tag in $manifestTags) {
    # NuGet tags are space-separated: a tag can't hold whitespace.
    if ($tag -match '\s') { $problems.Add("tag '$tag' contains whitespace") }
}
foreach ($key in 'Author', 'CompanyName', 'Copyright') { if ($null -ne (Get-Entry $manifest $key)) { Test-Text $key (Get-Entry $manifest $key) } }
$uris = [ordered]@{}
foreach ($key in 'LicenseUri', 'ProjectUri', 'IconUri') {
    $value = Get-Entry $psData $key
    if ($null -eq $value) { continue }
    $uri = $null
    if (-not [uri]::TryCreate([string]$value, [UriKind]::Absolute, [ref]$uri) -or $uri.Scheme -notin 'http', 'https' -or [string]$value -match $placeholder) {
        $problems.Add("PrivateData.PSData.$key '$value' is not a real http(s) URI")
    } else {
        $uris[$key] = $uri.AbsoluteUri
    }
}
$prerelease = [string](Get-Entry $psData 'Prerelease')
if ($prerelease -and $prerelease -notmatch '^[0-9A-Za-z]+$') {
    $problems.Add("PrivateData.PSData.Prerelease '$prerelease' must be letters and digits only")
}
foreach ($file in @(Get-Entry $manifest 'RootModule') + @(Get-Entry $manifest 'FormatsToProcess') + @(Get-Entry $manifest 'TypesToProcess')) {
    if ($file -and -not (Test-Path -LiteralPath (Join-Path $ModulePath $file))) { $problems.Add("$file is listed in the manifest but not in $ModulePath") }
}
if ($problems.Count -gt 0) {
    throw "Module manifest $manifestPath is not ready to package:`n  - $($problems -join "`n  - ")"
}

# NuGet's normalized form: three parts, a fourth only when it is not zero.
$version = '{0}.{1}.{2}' -f $moduleVersion.Major, $moduleVersion.Minor, [math]::Max($moduleVersion.Build, 0)
if ($moduleVersion.Revision -gt 0) { $version += ".$($moduleVersion.Revision)" }
if ($prerelease) { $version += "-$prerelease" }

# Tags as the gallery writes them, for feeds that search by command (PSCmdlet_*, PSCommand_*);
# a local file repository reads the tags of the packed manifest instead.
$tags = [System.Collections.Generic.List[string]]::new()
function Add-Tag([string] $Tag) { if ($Tag -and -not $tags.Contains($Tag)) { $tags.Add($Tag) } }
Add-Tag 'PSModule'
foreach ($tag in $manifestTags) { Add-Tag $tag }
foreach ($kind in @(
        @{ Key = 'CmdletsToExport'; Includes = 'PSIncludes_Cmdlet'; Prefix = 'PSCmdlet_' }
        @{ Key = 'FunctionsToExport'; Includes = 'PSIncludes_Function'; Prefix = 'PSFunction_' })) {
    # Wildcard exports can't be listed without loading the module: they get no per-command tags.
    $commands = @(Get-Entry $manifest $kind.Key | Where-Object { $_ -and -not [WildcardPattern]::ContainsWildcardCharacters($_) })
    if ($commands.Count -eq 0) { continue }
    Add-Tag $kind.Includes
    foreach ($command in $commands) { Add-Tag "$($kind.Prefix)$command"; Add-Tag "PSCommand_$command" }
}

# RequiredModules become NuGet dependencies.
$dependencies = foreach ($required in @(Get-Entry $manifest 'RequiredModules' | Where-Object { $_ })) {
    if ($required -is [string]) { [pscustomobject]@{ Id = $required; Range = $null }; continue }
    $exact = Get-Entry $required 'RequiredVersion'
    $min = Get-Entry $required 'ModuleVersion'
    $max = Get-Entry $required 'MaximumVersion'
    $range = if ($exact) { "[$exact]" } elseif ($min -and $max) { "[$min,$max]" } elseif ($max) { "(,$max]" } elseif ($min) { "$min" } else { $null }
    [pscustomobject]@{ Id = Get-Entry $required 'ModuleName'; Range = $range }
}

# ---- The parts ---------------------------------------------------------------------------

function New-XmlText([scriptblock] $Body) {
    $settings = [System.Xml.XmlWriterSettings]::new()
    $settings.Indent = $true
    $settings.Encoding = [System.Text.UTF8Encoding]::new($false)
    $stream = [System.IO.MemoryStream]::new()
    $writer = [System.Xml.XmlWriter]::Create($stream, $settings)
    try {
        $writer.WriteStartDocument()
        & $Body $writer
        $writer.WriteEndDocument()
    } finally {
        $writer.Dispose()
    }
    , $stream.ToArray()
}

$nuspecNs = 'http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd'
$nuspec = New-XmlText {
    param($w)
    $w.WriteStartElement('package', $nuspecNs)
    $w.WriteStartElement('metadata', $nuspecNs)
    $w.WriteElementString('id', $nuspecNs, $name)
    $w.WriteElementString('version', $nuspecNs, $version)
    $w.WriteElementString('authors', $nuspecNs, [string]$manifest.Author)
    $w.WriteElementString('owners', $nuspecNs, [string]$(if (Get-Entry $manifest 'CompanyName') { $manifest.CompanyName } else { $manifest.Author }))
    $w.WriteElementString('requireLicenseAcceptance', $nuspecNs, $(if (Get-Entry $psData 'RequireLicenseAcceptance') { 'true' } else { 'false' }))
    if ($uris.Contains('LicenseUri')) { $w.WriteElementString('licenseUrl', $nuspecNs, $uris['LicenseUri']) }
    if ($uris.Contains('ProjectUri')) { $w.WriteElementString('projectUrl', $nuspecNs, $uris['ProjectUri']) }
    if ($uris.Contains('IconUri')) { $w.WriteElementString('iconUrl', $nuspecNs, $uris['IconUri']) }
    $w.WriteElementString('description', $nuspecNs, [string]$manifest.Description)
    $w.WriteElementString('releaseNotes', $nuspecNs, [string]$psData.ReleaseNotes)
    if (Get-Entry $manifest 'Copyright') { $w.WriteElementString('copyright', $nuspecNs, [string]$manifest.Copyright) }
    $w.WriteElementString('tags', $nuspecNs, $tags -join ' ')
    if (@($dependencies).Count -gt 0) {
        $w.WriteStartElement('dependencies', $nuspecNs)
        foreach ($d in $dependencies) {
            $w.WriteStartElement('dependency', $nuspecNs)
            $w.WriteAttributeString('id', $d.Id)
            if ($d.Range) { $w.WriteAttributeString('version', $d.Range) }
            $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
}

$corePropertiesName = "package/services/metadata/core-properties/$([guid]::NewGuid().ToString('N')).psmdcp"
$coreProperties = New-XmlText {
    param($w)
    $ns = 'http://schemas.openxmlformats.org/package/2006/metadata/core-properties'
    $dc = 'http://purl.org/dc/elements/1.1/'
    $w.WriteStartElement('coreProperties', $ns)
    $w.WriteAttributeString('xmlns', 'dc', $null, $dc)
    $w.WriteElementString('creator', $dc, [string]$manifest.Author)
    $w.WriteElementString('description', $dc, [string]$manifest.Description)
    $w.WriteElementString('identifier', $dc, $name)
    $w.WriteElementString('version', $ns, $version)
    $w.WriteElementString('keywords', $ns, $tags -join ' ')
    $w.WriteElementString('lastModifiedBy', $ns, 'build/Package.ps1')
    $w.WriteEndElement()
}

$rels = New-XmlText {
    param($w)
    $ns = 'http://schemas.openxmlformats.org/package/2006/relationships'
    $w.WriteStartElement('Relationships', $ns)
    foreach ($r in @(
            @{ Type = 'http://schemas.microsoft.com/packaging/2010/07/manifest'; Target = "/$name.nuspec" }
            @{ Type = 'http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties'; Target = "/$corePropertiesName" })) {
        $w.WriteStartElement('Relationship', $ns)
        $w.WriteAttributeString('Type', $r.Type)
        $w.WriteAttributeString('Target', $r.Target)
        $w.WriteAttributeString('Id', 'R' + [guid]::NewGuid().ToString('N').Substring(0, 16).ToUpperInvariant())
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
}

# The module's files, by their path inside the package (forward slashes).
$files = [ordered]@{}
foreach ($file in Get-ChildItem -LiteralPath $ModulePath -Recurse -File) {
    $files[[System.IO.Path]::GetRelativePath($ModulePath, $file.FullName).Replace('\', '/')] = $file.FullName
}
if ($LicensePath -and (Test-Path -LiteralPath $LicensePath) -and -not $files.Contains('LICENSE')) {
    $files['LICENSE'] = (Resolve-Path -LiteralPath $LicensePath).ProviderPath
}

$contentTypes = New-XmlText {
    param($w)
    $ns = 'http://schemas.openxmlformats.org/package/2006/content-types'
    $w.WriteStartElement('Types', $ns)
    $defaults = [ordered]@{
        rels   = 'application/vnd.openxmlformats-package.relationships+xml'
        psmdcp = 'application/vnd.openxmlformats-package.core-properties+xml'
        nuspec = 'application/octet'
    }
    foreach ($path in $files.Keys) {
        $extension = [System.IO.Path]::GetExtension($path).TrimStart('.')
        if ($extension -and -not $defaults.Contains($extension)) { $defaults[$extension] = 'application/octet' }
    }
    foreach ($extension in $defaults.Keys) {
        $w.WriteStartElement('Default', $ns)
        $w.WriteAttributeString('Extension', $extension)
        $w.WriteAttributeString('ContentType', $defaults[$extension])
        $w.WriteEndElement()
    }
    foreach ($path in $files.Keys | Where-Object { -not [System.IO.Path]::GetExtension($_) }) {
        $w.WriteStartElement('Override', $ns)
        $w.WriteAttributeString('PartName', "/$path")
        $w.WriteAttributeString('ContentType', 'application/octet')
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
}

# ---- Write the zip -----------------------------------------------------------------------

$null = New-Item -ItemType Directory -Force -Path $OutDir
$OutDir = (Resolve-Path -LiteralPath $OutDir).ProviderPath
$package = Join-Path $OutDir "$name.$version.nupkg"
# Written aside, then moved: a failed run never leaves a half-written package behind.
$partial = "$package.partial"
$stream = [System.IO.File]::Open($partial, [System.IO.FileMode]::Create)
try {
    $zip = [System.IO.Compression.ZipArchive]::new($stream, [System.IO.Compression.ZipArchiveMode]::Create)
    try {
        function Add-Part([string] $Path, [byte[]] $Bytes) {
            $entry = $zip.CreateEntry($Path, [System.IO.Compression.CompressionLevel]::Optimal)
            $s = $entry.Open()
            try { $s.Write($Bytes, 0, $Bytes.Length) } finally { $s.Dispose() }
        }
        Add-Part '_rels/.rels' $rels
        Add-Part "$name.nuspec" $nuspec
        foreach ($path in $files.Keys) {
            $entry = $zip.CreateEntry($path, [System.IO.Compression.CompressionLevel]::Optimal)
            $entry.LastWriteTime = [System.IO.File]::GetLastWriteTime($files[$path])
            $s = $entry.Open()
            $in = [System.IO.File]::OpenRead($files[$path])
            try { $in.CopyTo($s) } finally { $in.Dispose(); $s.Dispose() }
        }
        Add-Part '[Content_Types].xml' $contentTypes
        Add-Part $corePropertiesName $coreProperties
    } finally {
        $zip.Dispose()
    }
} finally {
    $stream.Dispose()
}
Move-Item -LiteralPath $partial -Destination $package -Force
Write-Verbose "Packed $($files.Count) files of $name $version with tags: $($tags -join ' ')"
$package

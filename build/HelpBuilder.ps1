#requires -Version 7.0
<#
.SYNOPSIS
    Generates PSTcp's help: MAML for the compiled cmdlets and the about_PSTcp topic, from markdown.
.DESCRIPTION
    Compiled cmdlets take their help from MAML (<Destination>/PSTcp.dll-Help.xml). Nobody should
    edit that XML, so it is generated here from one readable source per cmdlet, and merged with
    the parameter METADATA of the compiled cmdlets themselves: names, types, positions, mandatory,
    pipeline input, parameter sets, aliases, wildcards and output types come from the module, only
    prose comes from the markdown. The module is loaded in a child pwsh (a loaded DLL can't be
    unloaded and would lock out/).

    The build fails, naming every problem at once, when an exported cmdlet has no markdown file,
    a markdown file names no exported cmdlet, a public parameter has no description, the markdown
    describes a parameter the cmdlet does not have, an optional parameter has no default value
    line, a required section is empty, an example has no code, or a cmdlet has fewer than two
    examples. Common parameters are never described in the markdown; -WhatIf and -Confirm get
    the standard text when the cmdlet supports ShouldProcess.

    THE MARKDOWN FORMAT (module/help/<Verb-Noun>.md)

        # Verb-Noun                      the cmdlet's name; must match the file name

        ## SYNOPSIS                      one sentence (required)

        ## DESCRIPTION                   paragraphs (required)

        ## PARAMETERS
        ### -Name                        one subsection per public parameter (all required)
        Prose, in paragraphs.
        Default value: <text>            one line, required for optional non-switch parameters;
                                         shown as "Default value" and not part of the prose

        ## INPUTS                        required; one subsection per type, named by the type
        ### PSTcp.TcpConnection          (or "None"), with prose under it
        ## OUTPUTS                       the same; must name every [OutputType] of the cmdlet

        ## NOTES                         optional paragraphs

        ## EXAMPLES                      at least two
        ### Example 1: Title
        ```powershell
        code that really runs: self-contained, loopback only, cleans up after itself
        ```
        Explanation paragraphs.

        ## RELATED LINKS                 optional; "- Other-Command" or "- [Text](https://uri)"

    Prose: paragraphs are separated by blank lines; lines starting with "- " or "* " are list
    items; fenced code blocks are kept verbatim; `code` and **bold** markers are removed.
    Headings inside fenced code blocks are code, not headings.

    about_PSTcp.md becomes about_PSTcp.help.txt: "# about_PSTcp" names the topic, "## HEADING"
    starts a section (SHORT DESCRIPTION and LONG DESCRIPTION first), "### Heading" a
    sub-section; prose is wrapped at 80 columns, code blocks and tables are kept verbatim.

    With -ListExamples the script only parses the sources and outputs one object per example
    (Command, Title, Code): the tests use it to run every example.
.EXAMPLE
    ./build/HelpBuilder.ps1 -Source ./module/help -Destination ./out/PSTcp/en-US
#>
[CmdletBinding(DefaultParameterSetName = 'Build')]
param(
    # Folder holding the <Verb-Noun>.md and about_*.md sources.
    [Parameter(Mandatory)]
    [string] $Source,

    # The module's culture folder, e.g. out/PSTcp/en-US; the manifest is expected in its parent.
    [Parameter(Mandatory, ParameterSetName = 'Build')]
    [string] $Destination,

    # Read the cmdlet metadata from this JSON file instead of loading the module (for tests).
    [Parameter(ParameterSetName = 'Build')]
    [string] $MetadataPath,

    # Only parse the sources and output their examples.
    [Parameter(Mandatory, ParameterSetName = 'Examples')]
    [switch] $ListExamples
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$ModuleName = 'PSTcp'
$Ns = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
$ShouldProcessText = @{
    WhatIf  = 'Shows what would happen if the cmdlet runs. The cmdlet is not run.'
    Confirm = 'Prompts you for confirmation before running the cmdlet.'
}

. (Join-Path $PSScriptRoot 'Help/Markdown.ps1')   # Markdown parsing

#region Cmdlet metadata (from the compiled module, in a child pwsh)

# The child's script: imports the module and writes its cmdlets' metadata as JSON.
$MetadataScript = @'
param([string] $Manifest, [string] $OutFile)
$ErrorActionPreference = 'Stop'
$module = Import-Module $Manifest -PassThru -Force
$common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
function Get-TypeName([type] $Type) {
    if ($Type.IsArray) { return (Get-TypeName $Type.GetElementType()) + '[]' }
    if ($Type.IsGenericType) {
        $args_ = ($Type.GetGenericArguments() | ForEach-Object { Get-TypeName $_ }) -join ', '
        return ($Type.GetGenericTypeDefinition().FullName -replace '`\d+$') + "[$args_]"
    }
    $Type.FullName
}
function Get-ValueList([System.Management.Automation.ParameterMetadata] $P) {
    $type = $P.ParameterType
    if ($type.IsArray) { $type = $type.GetElementType() }
    $set = $P.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateSetAttribute] } | Select-Object -First 1
    if ($set) { return @($set.ValidValues) }
    if ($type.IsEnum) { return @([enum]::GetNames($type)) }
    @()
}
function Get-SetInfo([System.Management.Automation.ParameterSetMetadata] $S, [string] $Name) {
    [ordered]@{
        Name = $Name
        Position = if ($S.Position -eq [int]::MinValue) { $null } else { $S.Position }
        Mandatory = $S.IsMandatory
        ByValue = $S.ValueFromPipeline
        ByPropertyName = $S.ValueFromPipelineByPropertyName
    }
}
$commands = foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $cmdletAttribute = $cmd.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true) | Select-Object -First 1
    $parameters = foreach ($p in $cmd.Parameters.Values) {
        if ($p.Name -in $common) { continue }
        [ordered]@{
            Name = $p.Name
            Type = Get-TypeName $p.ParameterType
            IsSwitch = $p.SwitchParameter
            Aliases = @($p.Aliases)
            Globbing = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
            Values = @(Get-ValueList $p)
            Sets = @(foreach ($key in $p.ParameterSets.Keys) { Get-SetInfo $p.ParameterSets[$key] $key })
        }
    }
    [ordered]@{
        Name = $cmd.Name; Verb = $cmd.Verb; Noun = $cmd.Noun; HelpFile = $cmd.HelpFile; HelpUri = $cmd.HelpUri
        SupportsShouldProcess = [bool]$cmdletAttribute.SupportsShouldProcess
        DefaultParameterSet = $cmd.DefaultParameterSet
        OutputTypes = @($cmd.OutputType | ForEach-Object { if ($_.Type) { Get-TypeName $_.Type } else { $_.Name } })
        Parameters = @($parameters)
        # The engine resolves which parameters each set has; it keeps declaration order.
        ParameterSets = @(foreach ($set in $cmd.ParameterSets) {
                [ordered]@{ Name = $set.Name; IsDefault = $set.IsDefault; Parameters = @($set.Parameters | Where-Object Name -NotIn $common | ForEach-Object Name) }
            })
    }
}
ConvertTo-Json -InputObject @($commands) -Depth 8 | Set-Content -LiteralPath $OutFile -Encoding utf8
'@

# Get-PwshCommand: the pwsh to start children with (one copy, in build/Pwsh.ps1).
. (Join-Path $PSScriptRoot 'Pwsh.ps1')

function Get-CommandMetadata([string] $Manifest) {
    if (-not (Test-Path $Manifest)) { throw "HelpBuilder: module manifest '$Manifest' not found; build the module before its help." }
    $work = Join-Path ([IO.Path]::GetTempPath()) "PSTcpHelp-$PID-$([guid]::NewGuid().ToString('n'))"
    $null = New-Item -ItemType Directory $work
    try {
        $script = Join-Path $work 'Dump-Metadata.ps1'
        $json = Join-Path $work 'metadata.json'
        Set-Content -LiteralPath $script -Value $MetadataScript -Encoding utf8
        $pwsh = @(Get-PwshCommand)
        $childArgs = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $script, '-Manifest', $Manifest, '-OutFile', $json)
        $output = & $pwsh[0] @childArgs 2>&1
        if ($LASTEXITCODE -ne 0 -or -not (Test-Path $json)) {
            throw "HelpBuilder: could not read cmdlet metadata from '$Manifest' (exit code $LASTEXITCODE):`n$($output -join "`n")"
        }
        Get-Content -LiteralPath $json -Raw | ConvertFrom-Json
    }
    finally { Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue }
}

#endregion

#region Checks

function Test-HelpAgainstMetadata($Commands, $Helps, [Collections.Generic.List[string]] $Problems) {
    foreach ($cmd in $Commands) {
        if (-not $Helps.Contains($cmd.Name)) { $Problems.Add("$($cmd.Name): no help source; write $($cmd.Name).md."); continue }
        $help = $Helps[$cmd.Name]
        $file = $help.File
        foreach ($p in $cmd.Parameters) {
            if (-not $help.Parameters.Contains($p.Name)) {
                if ($ShouldProcessText.ContainsKey($p.Name)) { continue }
                $Problems.Add("${file}: parameter -$($p.Name) has no description; add '### -$($p.Name)' under ## PARAMETERS.")
                continue
            }
            $doc = $help.Parameters[$p.Name]
            if (-not $doc.Description) { $Problems.Add("${file}: parameter -$($p.Name) has an empty description.") }
            $alwaysMandatory = -not ($p.Sets | Where-Object { -not $_.Mandatory })
            if ($null -eq $doc.Default -and -not $p.IsSwitch -and -not $alwaysMandatory) {
                $Problems.Add("${file}: optional parameter -$($p.Name) needs a 'Default value: ...' line.")
            }
        }
        $real = @($cmd.Parameters | ForEach-Object Name)
        foreach ($name in $help.Parameters.Keys) {
            if ($name -notin $real) { $Problems.Add("${file}: describes parameter -$name, which $($cmd.Name) does not have (it has: $($real -join ', ')).") }
        }
        $documented = @($help.Outputs | ForEach-Object { $_.Type; ($_.Type -split '\.')[-1] })
        foreach ($type in $cmd.OutputTypes) {
            if ($type -notin $documented -and ($type -split '\.')[-1] -notin $documented) {
                $Problems.Add("${file}: $($cmd.Name) declares [OutputType($type)]; describe it under ## OUTPUTS.")
            }
        }
    }
    $names = @($Commands | ForEach-Object Name)
    foreach ($name in $Helps.Keys) {
        if ($name -notin $names) { $Problems.Add("$($Helps[$name].File): describes $name, which the module does not export.") }
    }
}

#endregion

. (Join-Path $PSScriptRoot 'Help/Maml.ps1')   # MAML

. (Join-Path $PSScriptRoot 'Help/AboutTopic.ps1')   # about topics

#region Main

$Source = (Resolve-Path -LiteralPath $Source).Path
$problems = [Collections.Generic.List[string]]::new()
$helps = [ordered]@{}
foreach ($md in Get-ChildItem -LiteralPath $Source -Filter *.md | Where-Object Name -NotLike 'about_*' | Sort-Object Name) {
    $help = Read-CommandHelp $md.FullName $problems
    $helps[$help.Name] = $help
}
$abouts = @(Get-ChildItem -LiteralPath $Source -Filter 'about_*.md' | Sort-Object Name)

if ($ListExamples) {
    foreach ($help in $helps.Values) {
        foreach ($e in $help.Examples) { [pscustomobject]@{ Command = $help.Name; Title = $e.Title; Code = $e.Code } }
    }
    foreach ($about in $abouts) { Get-AboutExample $about.FullName }
    return
}

$commands = if ($MetadataPath) { Get-Content -LiteralPath $MetadataPath -Raw | ConvertFrom-Json }
else { Get-CommandMetadata (Join-Path (Split-Path $Destination -Parent) "$ModuleName.psd1") }
if (-not $commands) { $problems.Add("The module exports no cmdlets.") }
Test-HelpAgainstMetadata $commands $helps $problems
$aboutTexts = @(foreach ($about in $abouts) {
    @{ Name = $about.BaseName; Text = ConvertTo-AboutText $about.FullName $problems }
})
if ($problems.Count) {
    # One line per problem on the host: the error view may fold the exception's lines together.
    foreach ($problem in $problems) { Write-Host "HelpBuilder: $problem" -ForegroundColor Red }
    throw "HelpBuilder: $($problems.Count) problem(s) in the help sources under ${Source}:`n  - " + ($problems -join "`n  - ")
}

$null = New-Item -ItemType Directory -Force $Destination
$helpFiles = @($commands | ForEach-Object HelpFile | Where-Object { $_ } | Sort-Object -Unique)
if (-not $helpFiles) { $helpFiles = @("$ModuleName.dll-Help.xml") }
foreach ($helpFile in $helpFiles) {
    $mine = @($commands | Where-Object { -not $_.HelpFile -or $_.HelpFile -eq $helpFile })
    Write-Maml (Join-Path $Destination $helpFile) $mine $helps
}
foreach ($about in $aboutTexts) {
    [IO.File]::WriteAllText((Join-Path $Destination "$($about.Name).help.txt"), $about.Text, [Text.UTF8Encoding]::new($false))
}
Write-Verbose "HelpBuilder: help for $(@($commands).Count) cmdlet(s) and $($aboutTexts.Count) about topic(s) written to $Destination"

#endregion

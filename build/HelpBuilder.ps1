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

#region Markdown parsing

# Splits a markdown file into a tree: Title (H1), and H2 sections holding Lines (before any
# H3) and Subs (H3 subsections with their own Lines). Fenced code is never read as headings.
function Read-MarkdownTree([string] $Path) {
    $tree = [ordered]@{ Title = $null; Sections = [ordered]@{} }
    $section = $null; $target = $null; $inFence = $false
    foreach ($line in [IO.File]::ReadAllLines($Path)) {
        if ($line -match '^\s*```') { $inFence = -not $inFence }
        elseif (-not $inFence -and $line -match '^#\s+(.+?)\s*$') { $tree.Title = $Matches[1]; continue }
        elseif (-not $inFence -and $line -match '^##\s+(.+?)\s*$') {
            $section = [ordered]@{ Lines = [Collections.Generic.List[string]]::new(); Subs = [Collections.Generic.List[object]]::new() }
            $tree.Sections[$Matches[1].ToUpperInvariant()] = $section
            $target = $section.Lines
            continue
        }
        elseif (-not $inFence -and $line -match '^###\s+(.+?)\s*$' -and $section) {
            $sub = [ordered]@{ Title = $Matches[1]; Lines = [Collections.Generic.List[string]]::new() }
            $section.Subs.Add($sub)
            $target = $sub.Lines
            continue
        }
        if ($null -ne $target) { $target.Add($line) }
    }
    $tree
}

function Remove-InlineMarkup([string] $Text) {
    $Text = $Text -replace '\[([^\]]+)\]\(([^)]+)\)', '$1 ($2)'
    $Text = $Text -replace '\*\*([^*]+)\*\*', '$1'
    # ``code with `backticks` `` first, then `code`.
    $Text -replace '``\s?(.+?)\s?``|`([^`]+)`', { if ($_.Groups[1].Success) { $_.Groups[1].Value } else { $_.Groups[2].Value } }
}

# Turns prose lines into blocks: [pscustomobject]@{ Kind = 'Para'|'Item'|'Code'|'Table'; Text = ... }.
function ConvertTo-Block([string[]] $Lines) {
    $blocks = [Collections.Generic.List[object]]::new()
    $current = $null
    $code = $null
    foreach ($line in $Lines) {
        if ($null -ne $code) {
            if ($line -match '^\s*```') { $blocks.Add([pscustomobject]@{ Kind = 'Code'; Text = ($code -join "`n") }); $code = $null }
            else { $code.Add($line) }
            continue
        }
        if ($line -match '^\s*```') { $current = $null; $code = [Collections.Generic.List[string]]::new(); continue }
        if ($line -match '^\s*$') { $current = $null; continue }
        if ($line -match '^\s*\|') {
            if ($current -and $current.Kind -eq 'Table') { $current.Text += "`n" + $line.Trim() }
            else { $current = [pscustomobject]@{ Kind = 'Table'; Text = $line.Trim() }; $blocks.Add($current) }
            continue
        }
        if ($line -match '^\s*[-*]\s+(.*)$') {
            $current = [pscustomobject]@{ Kind = 'Item'; Text = $Matches[1].Trim() }; $blocks.Add($current)
            continue
        }
        if ($current -and $current.Kind -in 'Para', 'Item') { $current.Text += ' ' + $line.Trim() }
        else { $current = [pscustomobject]@{ Kind = 'Para'; Text = $line.Trim() }; $blocks.Add($current) }
    }
    if ($null -ne $code) { $blocks.Add([pscustomobject]@{ Kind = 'Code'; Text = ($code -join "`n") }) }
    foreach ($b in $blocks) { if ($b.Kind -in 'Para', 'Item') { $b.Text = Remove-InlineMarkup $b.Text } }
    $blocks.ToArray()
}

# Reads one cmdlet's markdown into a help record, collecting format problems in $Problems.
function Read-CommandHelp([string] $Path, [Collections.Generic.List[string]] $Problems) {
    $file = Split-Path $Path -Leaf
    $tree = Read-MarkdownTree $Path
    $name = [IO.Path]::GetFileNameWithoutExtension($Path)
    if ($tree.Title -ne $name) { $Problems.Add("${file}: the title '# $($tree.Title)' must be '# $name'.") }
    $sections = $tree.Sections
    $known = 'SYNOPSIS', 'DESCRIPTION', 'PARAMETERS', 'INPUTS', 'OUTPUTS', 'NOTES', 'EXAMPLES', 'RELATED LINKS'
    foreach ($s in $sections.Keys) { if ($s -notin $known) { $Problems.Add("${file}: unknown section '## $s' (known: $($known -join ', ')).") } }
    $get = { param($s) if ($sections.Contains($s)) { $sections[$s] } else { @{ Lines = @(); Subs = @() } } }

    $help = [ordered]@{
        Name = $name; File = $file
        Synopsis = @(ConvertTo-Block (& $get 'SYNOPSIS').Lines | ForEach-Object Text) -join ' '
        Description = @(ConvertTo-Block (& $get 'DESCRIPTION').Lines)
        Parameters = [ordered]@{}
        Inputs = @(foreach ($sub in (& $get 'INPUTS').Subs) { @{ Type = $sub.Title; Description = @(ConvertTo-Block $sub.Lines) } })
        Outputs = @(foreach ($sub in (& $get 'OUTPUTS').Subs) { @{ Type = $sub.Title; Description = @(ConvertTo-Block $sub.Lines) } })
        Notes = @(ConvertTo-Block (& $get 'NOTES').Lines)
        Examples = [Collections.Generic.List[object]]::new()
        Links = @(foreach ($l in (& $get 'RELATED LINKS').Lines) {
                if ($l -match '^\s*[-*]\s+\[([^\]]+)\]\(([^)]+)\)') { @{ Text = $Matches[1]; Uri = $Matches[2] } }
                elseif ($l -match '^\s*[-*]\s+(\S.*?)\s*$') { @{ Text = $Matches[1]; Uri = '' } }
            })
    }
    if (-not $help.Synopsis) { $Problems.Add("${file}: ## SYNOPSIS is empty.") }
    if (-not $help.Description) { $Problems.Add("${file}: ## DESCRIPTION is empty.") }
    if (-not $help.Inputs) { $Problems.Add("${file}: ## INPUTS needs a '### <type>' (or '### None') subsection.") }
    if (-not $help.Outputs) { $Problems.Add("${file}: ## OUTPUTS needs a '### <type>' (or '### None') subsection.") }

    foreach ($sub in (& $get 'PARAMETERS').Subs) {
        if ($sub.Title -notmatch '^-(\w+)$') { $Problems.Add("${file}: parameter heading '### $($sub.Title)' must be '### -Name'."); continue }
        $pname = $Matches[1]
        $default = $null
        $prose = foreach ($l in $sub.Lines) {
            if ($l -match '^\s*Default value:\s*(.*?)\s*$') { $default = $Matches[1] } else { $l }
        }
        if ($help.Parameters.Contains($pname)) { $Problems.Add("${file}: parameter -$pname is described twice.") }
        $help.Parameters[$pname] = @{ Description = @(ConvertTo-Block $prose); Default = $default }
    }

    foreach ($sub in (& $get 'EXAMPLES').Subs) {
        $blocks = @(ConvertTo-Block $sub.Lines)
        $code = @($blocks | Where-Object Kind -EQ 'Code')
        if ($code.Count -ne 1) { $Problems.Add("${file}: '### $($sub.Title)' needs exactly one fenced code block (has $($code.Count))."); continue }
        $help.Examples.Add(@{ Title = $sub.Title; Code = $code[0].Text; Remarks = @($blocks | Where-Object Kind -NE 'Code') })
    }
    if ($help.Examples.Count -lt 2) { $Problems.Add("${file}: needs at least two examples under ## EXAMPLES (has $($help.Examples.Count)).") }
    $help
}

#endregion

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
        Name = $cmd.Name; Verb = $cmd.Verb; Noun = $cmd.Noun; HelpFile = $cmd.HelpFile
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

# The pwsh to start children with. Under `dotnet pwsh` the process is dotnet itself, so the
# child is started as `dotnet <PSHOME>/pwsh.dll`.
function Get-PwshCommand {
    $path = (Get-Process -Id $PID).Path
    if ([IO.Path]::GetFileNameWithoutExtension($path) -eq 'dotnet') { return $path, (Join-Path $PSHOME 'pwsh.dll') }
    , $path
}

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

#region MAML

function Write-Para([Xml.XmlWriter] $W, $Blocks) {
    $W.WriteStartElement('maml', 'description', $Ns.maml)
    foreach ($b in @($Blocks)) {
        $text = switch ($b.Kind) {
            'Item' { '- ' + $b.Text }
            'Code' { ($b.Text -split "`n" | ForEach-Object { '    ' + $_ }) -join "`n" }
            default { $b.Text }
        }
        $W.WriteElementString('maml', 'para', $Ns.maml, $text)
    }
    $W.WriteEndElement()
}

function Write-Type([Xml.XmlWriter] $W, [string] $Name) {
    $W.WriteStartElement('dev', 'type', $Ns.dev)
    $W.WriteElementString('maml', 'name', $Ns.maml, $Name)
    $W.WriteElementString('maml', 'uri', $Ns.maml, '')
    $W.WriteEndElement()
}

# One parameter as a syntax item (for one set) or in the parameters list (merged over its sets).
function Write-Parameter([Xml.XmlWriter] $W, $P, $Doc, [bool] $Required, $Position, [bool] $InSyntax) {
    $byValue = [bool]($P.Sets | Where-Object ByValue)
    $byName = [bool]($P.Sets | Where-Object ByPropertyName)
    $pipeline = if ($byValue -and $byName) { 'True (ByValue, ByPropertyName)' } elseif ($byValue) { 'True (ByValue)' } elseif ($byName) { 'True (ByPropertyName)' } else { 'False' }
    $W.WriteStartElement('command', 'parameter', $Ns.command)
    $W.WriteAttributeString('required', $Required.ToString().ToLowerInvariant())
    $W.WriteAttributeString('variableLength', $P.Type.EndsWith('[]').ToString().ToLowerInvariant())
    $W.WriteAttributeString('globbing', ([bool]$P.Globbing).ToString().ToLowerInvariant())
    $W.WriteAttributeString('pipelineInput', $pipeline)
    $W.WriteAttributeString('position', $(if ($null -eq $Position) { 'named' } else { "$Position" }))
    $W.WriteAttributeString('aliases', $(if ($P.Aliases) { $P.Aliases -join ', ' } else { 'none' }))
    $W.WriteElementString('maml', 'name', $Ns.maml, $P.Name)
    Write-Para $W $Doc.Description
    if ($P.Values -and $InSyntax) {
        $W.WriteStartElement('command', 'parameterValueGroup', $Ns.command)
        foreach ($v in $P.Values) {
            $W.WriteStartElement('command', 'parameterValue', $Ns.command)
            $W.WriteAttributeString('required', 'false'); $W.WriteAttributeString('variableLength', 'false')
            $W.WriteString($v); $W.WriteEndElement()
        }
        $W.WriteEndElement()
    }
    if (-not ($P.IsSwitch -and $InSyntax)) {
        $W.WriteStartElement('command', 'parameterValue', $Ns.command)
        $W.WriteAttributeString('required', (-not $P.IsSwitch).ToString().ToLowerInvariant())
        $W.WriteAttributeString('variableLength', 'false')
        $W.WriteString($(if ($P.IsSwitch) { 'SwitchParameter' } else { $P.Type })); $W.WriteEndElement()
    }
    Write-Type $W $P.Type
    $default = if ($null -ne $Doc.Default) { $Doc.Default } elseif ($P.IsSwitch) { 'False' } else { 'None' }
    $W.WriteElementString('dev', 'defaultValue', $Ns.dev, $default)
    $W.WriteEndElement()
}

# -WhatIf and -Confirm are not in the markdown: they mean the same everywhere.
function Get-ShouldProcessParameter($Cmd) {
    if (-not $Cmd.SupportsShouldProcess) { return }
    foreach ($name in 'WhatIf', 'Confirm') {
        [pscustomobject]@{
            Name = $name; Type = 'System.Management.Automation.SwitchParameter'; IsSwitch = $true
            Aliases = @($(if ($name -eq 'WhatIf') { 'wi' } else { 'cf' })); Globbing = $false; Values = @()
            Sets = @([pscustomobject]@{ Name = '__AllParameterSets'; Position = $null; Mandatory = $false; ByValue = $false; ByPropertyName = $false })
        }
    }
}

function Get-ParameterDoc($Help, $P) {
    if ($Help.Parameters.Contains($P.Name)) { return $Help.Parameters[$P.Name] }
    @{ Description = @([pscustomobject]@{ Kind = 'Para'; Text = $ShouldProcessText[$P.Name] }); Default = 'False' }
}

function Write-Syntax([Xml.XmlWriter] $W, $Cmd, $Help, $AllParameters) {
    $W.WriteStartElement('command', 'syntax', $Ns.command)
    $sets = @($Cmd.ParameterSets | Sort-Object { -not $_.IsDefault })
    foreach ($set in $sets) {
        $W.WriteStartElement('command', 'syntaxItem', $Ns.command)
        $W.WriteElementString('maml', 'name', $Ns.maml, $Cmd.Name)
        $entries = foreach ($name in @($set.Parameters) + @(Get-ShouldProcessParameter $Cmd | ForEach-Object Name)) {
            $p = $AllParameters | Where-Object Name -EQ $name
            $meta = $p.Sets | Where-Object { $_.Name -in $set.Name, '__AllParameterSets' } | Select-Object -First 1
            [pscustomobject]@{ P = $p; Meta = $meta }
        }
        # Positional first (by position), then mandatory, then the rest, each in declaration order.
        $ordered = $entries | Sort-Object -Stable { if ($null -eq $_.Meta.Position) { [int]::MaxValue } else { $_.Meta.Position } }, { -not $_.Meta.Mandatory }
        foreach ($e in $ordered) { Write-Parameter $W $e.P (Get-ParameterDoc $Help $e.P) ([bool]$e.Meta.Mandatory) $e.Meta.Position $true }
        $W.WriteEndElement()
    }
    $W.WriteEndElement()
}

function Write-ParameterList([Xml.XmlWriter] $W, $Help, $AllParameters) {
    $W.WriteStartElement('command', 'parameters', $Ns.command)
    foreach ($p in $AllParameters) {
        $required = -not ($p.Sets | Where-Object { -not $_.Mandatory })
        $position = $p.Sets | Where-Object { $null -ne $_.Position } | Select-Object -First 1 -ExpandProperty Position
        Write-Parameter $W $p (Get-ParameterDoc $Help $p) $required $position $false
    }
    $W.WriteEndElement()
}

function Write-TypeList([Xml.XmlWriter] $W, [string] $ListName, [string] $ItemName, $Entries) {
    $W.WriteStartElement('command', $ListName, $Ns.command)
    foreach ($entry in $Entries) {
        $W.WriteStartElement('command', $ItemName, $Ns.command)
        Write-Type $W $entry.Type
        Write-Para $W $entry.Description
        $W.WriteEndElement()
    }
    $W.WriteEndElement()
}

function Write-Examples([Xml.XmlWriter] $W, $Help) {
    $W.WriteStartElement('command', 'examples', $Ns.command)
    foreach ($example in $Help.Examples) {
        $W.WriteStartElement('command', 'example', $Ns.command)
        $W.WriteElementString('maml', 'title', $Ns.maml, "--------- $($example.Title) ---------")
        $W.WriteElementString('dev', 'code', $Ns.dev, $example.Code)
        $W.WriteStartElement('dev', 'remarks', $Ns.dev)
        foreach ($b in $example.Remarks) { $W.WriteElementString('maml', 'para', $Ns.maml, $(if ($b.Kind -eq 'Item') { '- ' + $b.Text } else { $b.Text })) }
        $W.WriteElementString('maml', 'para', $Ns.maml, '')   # a blank line before the next example
        $W.WriteEndElement()
        $W.WriteEndElement()
    }
    $W.WriteEndElement()
}

function Write-Command([Xml.XmlWriter] $W, $Cmd, $Help) {
    $all = @($Cmd.Parameters) + @(Get-ShouldProcessParameter $Cmd)
    $W.WriteStartElement('command', 'command', $Ns.command)
    foreach ($prefix in 'maml', 'command', 'dev') { $W.WriteAttributeString('xmlns', $prefix, $null, $Ns[$prefix]) }
    $W.WriteStartElement('command', 'details', $Ns.command)
    $W.WriteElementString('command', 'name', $Ns.command, $Cmd.Name)
    $W.WriteElementString('command', 'verb', $Ns.command, $Cmd.Verb)
    $W.WriteElementString('command', 'noun', $Ns.command, $Cmd.Noun)
    Write-Para $W @([pscustomobject]@{ Kind = 'Para'; Text = $Help.Synopsis })
    $W.WriteEndElement()
    Write-Para $W $Help.Description
    Write-Syntax $W $Cmd $Help $all
    Write-ParameterList $W $Help $all
    Write-TypeList $W 'inputTypes' 'inputType' $Help.Inputs
    Write-TypeList $W 'returnValues' 'returnValue' $Help.Outputs
    $W.WriteStartElement('maml', 'alertSet', $Ns.maml)
    $W.WriteStartElement('maml', 'alert', $Ns.maml)
    foreach ($b in $Help.Notes) { $W.WriteElementString('maml', 'para', $Ns.maml, $(if ($b.Kind -eq 'Item') { '- ' + $b.Text } else { $b.Text })) }
    $W.WriteEndElement(); $W.WriteEndElement()
    Write-Examples $W $Help
    $W.WriteStartElement('command', 'relatedLinks', $Ns.command)
    foreach ($link in $Help.Links) {
        $W.WriteStartElement('maml', 'navigationLink', $Ns.maml)
        $W.WriteElementString('maml', 'linkText', $Ns.maml, $link.Text)
        $W.WriteElementString('maml', 'uri', $Ns.maml, $link.Uri)
        $W.WriteEndElement()
    }
    $W.WriteEndElement()
    $W.WriteEndElement()
}

function Write-Maml([string] $Path, $Commands, $Helps) {
    $settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false) }
    $w = [Xml.XmlWriter]::Create($Path, $settings)
    try {
        $w.WriteStartDocument()
        $w.WriteStartElement('helpItems', 'http://msh')
        $w.WriteAttributeString('schema', 'maml')
        foreach ($cmd in $Commands) { Write-Command $w $cmd $Helps[$cmd.Name] }
        $w.WriteEndElement()
        $w.WriteEndDocument()
    }
    finally { $w.Dispose() }
}

#endregion

#region about topics

function Format-Wrapped([string] $Text, [int] $Indent, [int] $Hanging = $Indent, [int] $Width = 80) {
    $lines = [Collections.Generic.List[string]]::new()
    $line = ' ' * $Indent
    $empty = $true
    foreach ($word in $Text -split '\s+' | Where-Object { $_ }) {
        if (-not $empty -and $line.Length + 1 + $word.Length -gt $Width) {
            $lines.Add($line); $line = (' ' * $Hanging) + $word
        }
        else { $line += $(if ($empty) { $word } else { ' ' + $word }) }
        $empty = $false
    }
    if (-not $empty) { $lines.Add($line) }
    $lines
}

# A markdown table as aligned plain-text columns, indented by 4.
function Format-TextTable([string] $Table) {
    $rows = foreach ($line in $Table -split "`n") {
        if ($line -match '^\s*\|?[\s:|-]+\|?\s*$') { continue }   # the |---|---| separator
        , @($line.Trim().Trim('|') -split '\|' | ForEach-Object { Remove-InlineMarkup $_.Trim() })
    }
    $widths = @(for ($i = 0; $i -lt $rows[0].Count; $i++) { ($rows | ForEach-Object { if ($i -lt $_.Count) { $_[$i].Length } } | Measure-Object -Maximum).Maximum })
    $first = $true
    foreach ($row in $rows) {
        '    ' + ((@(for ($i = 0; $i -lt $row.Count; $i++) { $row[$i].PadRight($widths[$i]) }) -join '  ').TrimEnd())
        if ($first) { '    ' + (@($widths | ForEach-Object { '-' * $_ }) -join '  '); $first = $false }
    }
}

# about_*.md -> the classic about_*.help.txt layout that Get-Help shows as is.
function ConvertTo-AboutText([string] $Path, [Collections.Generic.List[string]] $Problems) {
    $tree = Read-MarkdownTree $Path
    $name = [IO.Path]::GetFileNameWithoutExtension($Path)
    $file = Split-Path $Path -Leaf
    if ($tree.Title -ne $name) { $Problems.Add("${file}: the title '# $($tree.Title)' must be '# $name'.") }
    foreach ($s in 'SHORT DESCRIPTION', 'LONG DESCRIPTION') {
        if (-not $tree.Sections.Contains($s)) { $Problems.Add("${file}: needs a '## $s' section.") }
    }
    $out = [Collections.Generic.List[string]]::new()
    $out.Add('TOPIC'); $out.Add("    $name"); $out.Add('')
    $writeBlocks = {
        param($Lines)
        foreach ($b in ConvertTo-Block $Lines) {
            switch ($b.Kind) {
                'Para' { $out.AddRange([string[]](Format-Wrapped $b.Text 4)) }
                'Item' { $out.AddRange([string[]](Format-Wrapped ('- ' + $b.Text) 4 6)) }
                'Code' { foreach ($l in $b.Text -split "`n") { $out.Add(('        ' + $l).TrimEnd()) } }
                'Table' { $out.AddRange([string[]](Format-TextTable $b.Text)) }
            }
            $out.Add('')
        }
    }
    foreach ($key in $tree.Sections.Keys) {
        $section = $tree.Sections[$key]
        $out.Add($key)
        & $writeBlocks $section.Lines
        foreach ($sub in $section.Subs) {
            $out.Add('  ' + $sub.Title)
            & $writeBlocks $sub.Lines
        }
    }
    ($out -join [Environment]::NewLine).TrimEnd() + [Environment]::NewLine
}

# The ```powershell blocks of an about topic, for the example runner.
function Get-AboutExample([string] $Path) {
    $name = [IO.Path]::GetFileNameWithoutExtension($Path)
    $tree = Read-MarkdownTree $Path
    $n = 0
    foreach ($key in $tree.Sections.Keys) {
        $section = $tree.Sections[$key]
        $parts = @(@{ Title = $key; Lines = $section.Lines }) + @($section.Subs)
        foreach ($part in $parts) {
            $inCode = $false; $code = $null
            foreach ($line in $part.Lines) {
                if ($line -match '^\s*```powershell\s*$') { $code = [Collections.Generic.List[string]]::new(); $inCode = $true }
                elseif ($inCode -and $line -match '^\s*```') {
                    $n++; $inCode = $false
                    [pscustomobject]@{ Command = $name; Title = "$($part.Title) ($n)"; Code = $code -join "`n" }
                }
                elseif ($inCode) { $code.Add($line) }
            }
        }
    }
}

#endregion

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

# HelpBuilder.ps1, MAML: dot-sourced by build/HelpBuilder.ps1, which holds the shared state.

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
    # The cmdlet's HelpUri first, as "Online Version:" (what Get-Help -Online opens).
    $online = if ($Cmd.PSObject.Properties['HelpUri'] -and $Cmd.HelpUri) { @([pscustomobject]@{ Text = 'Online Version:'; Uri = $Cmd.HelpUri }) } else { @() }
    foreach ($link in @($online) + @($Help.Links)) {
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

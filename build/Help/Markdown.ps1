# HelpBuilder.ps1, Markdown parsing: dot-sourced by build/HelpBuilder.ps1, which holds the shared state.

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

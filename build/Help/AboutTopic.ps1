# HelpBuilder.ps1, about topics: dot-sourced by build/HelpBuilder.ps1, which holds the shared state.

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

# A markdown table as aligned plain-text columns, indented by 4. The last column wraps so that
# every line fits in $Width columns (its continuation lines start under it).
function Format-TextTable([string] $Table, [int] $Width = 80) {
    $rows = foreach ($line in $Table -split "`n") {
        if ($line -match '^\s*\|?[\s:|-]+\|?\s*$') { continue }   # the |---|---| separator
        , @($line.Trim().Trim('|') -split '\|' | ForEach-Object { Remove-InlineMarkup $_.Trim() })
    }
    $widths = @(for ($i = 0; $i -lt $rows[0].Count; $i++) { ($rows | ForEach-Object { if ($i -lt $_.Count) { $_[$i].Length } } | Measure-Object -Maximum).Maximum })
    $last = $widths.Count - 1
    $lead = 4 + (($widths | Select-Object -First $last | Measure-Object -Sum).Sum) + 2 * $last
    # The last column gets what is left of the line, but never less than 20 columns.
    $widths[$last] = [Math]::Max(20, [Math]::Min($widths[$last], $Width - $lead))
    $first = $true
    foreach ($row in $rows) {
        $cells = @(for ($i = 0; $i -lt $last -and $i -lt $row.Count; $i++) { $row[$i].PadRight($widths[$i]) })
        $prefix = '    ' + (($cells -join '  ') + $(if ($cells) { '  ' } else { '' }))
        $text = if ($row.Count -gt $last) { $row[$last] } else { '' }
        $wrapped = @(if ($text) { Format-Wrapped $text 0 0 $widths[$last] } else { '' })
        ($prefix + $wrapped[0]).TrimEnd()
        foreach ($more in $wrapped | Select-Object -Skip 1) { ((' ' * $prefix.Length) + $more).TrimEnd() }
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

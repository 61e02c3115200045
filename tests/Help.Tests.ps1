#requires -Version 7.0
# Help: every exported cmdlet has full help (from the MAML that build/HelpBuilder.ps1 generates),
# about_PSTcp exists, every example in the help sources really runs, and the builder refuses
# help that has drifted from the cmdlets.

BeforeDiscovery {
    $script:Root = Split-Path $PSScriptRoot -Parent
    $script:Manifest = Join-Path $Root 'out/PSTcp/PSTcp.psd1'
    Import-Module $Manifest -Force
    $script:CmdletNames = @(Get-Command -Module PSTcp -CommandType Cmdlet | ForEach-Object Name)
    $script:Examples = @(& (Join-Path $Root 'build/HelpBuilder.ps1') -Source (Join-Path $Root 'module/help') -ListExamples |
            ForEach-Object { @{ Command = $_.Command; Title = $_.Title; Code = $_.Code } })
}

BeforeAll {
    $script:Root = Split-Path $PSScriptRoot -Parent
    $script:Manifest = Join-Path $Root 'out/PSTcp/PSTcp.psd1'
    $script:Builder = Join-Path $Root 'build/HelpBuilder.ps1'
    Import-Module $Manifest -Force
    $script:Common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters

    # Get-PwshCommand: how to start a child pwsh (one copy, in build/Pwsh.ps1).
    . (Join-Path $Root 'build/Pwsh.ps1')

    # Runs a script in a fresh pwsh with the module imported; kills it after $TimeoutSeconds.
    function Invoke-InChildPwsh([string] $Code, [int] $TimeoutSeconds = 30) {
        $script = Join-Path $TestDrive "example-$([guid]::NewGuid().ToString('n')).ps1"
        $quoted = $Manifest -replace "'", "''"
        Set-Content -LiteralPath $script -Encoding utf8 -Value @"
`$ErrorActionPreference = 'Stop'
Import-Module '$quoted'
$Code
"@
        $pwsh = @(Get-PwshCommand)
        $info = [Diagnostics.ProcessStartInfo]::new($pwsh[0])
        foreach ($a in @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File', $script)) { $info.ArgumentList.Add($a) }
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.RedirectStandardInput = $true
        $info.UseShellExecute = $false
        $process = [Diagnostics.Process]::Start($info)
        try {
            $process.StandardInput.Close()
            $stdout = $process.StandardOutput.ReadToEndAsync()
            $stderr = $process.StandardError.ReadToEndAsync()
            $exited = $process.WaitForExit($TimeoutSeconds * 1000)
            if (-not $exited) { $process.Kill($true); $process.WaitForExit() }
            else { $process.WaitForExit() }   # lets the output readers finish
            [pscustomobject]@{
                TimedOut = -not $exited
                ExitCode = if ($exited) { $process.ExitCode } else { $null }
                Output   = $stdout.GetAwaiter().GetResult()
                Errors   = $stderr.GetAwaiter().GetResult()
            }
        }
        finally { $process.Dispose() }
    }
}

Describe 'Help for <_>' -ForEach $CmdletNames {
    BeforeAll {
        $name = $_
        $help = Get-Help $name -Full
        $parameters = @((Get-Command $name).Parameters.Keys | Where-Object { $_ -notin $Common })
    }

    It 'has a synopsis of its own' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        # Without MAML, PowerShell makes up a synopsis from the syntax.
        $help.Synopsis | Should -Not -BeLike "*$name *"
    }

    It 'has a description' {
        ($help.description.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty
    }

    It 'has at least two examples, each with code' {
        @($help.examples.example).Count | Should -BeGreaterOrEqual 2
        foreach ($example in $help.examples.example) { $example.code | Should -Not -BeNullOrEmpty }
    }

    It 'describes every parameter, with a default value' {
        $documented = @($help.parameters.parameter)
        foreach ($parameter in $parameters) {
            $doc = $documented | Where-Object name -EQ $parameter
            $doc | Should -Not -BeNullOrEmpty -Because "-$parameter is a parameter of $name"
            ($doc.description.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty -Because "-$parameter needs a description"
            $doc.defaultValue | Should -Not -BeNullOrEmpty -Because "-$parameter needs a default value"
        }
    }

    It 'documents no parameter the cmdlet lacks' {
        foreach ($doc in @($help.parameters.parameter)) {
            $doc.name | Should -BeIn (@($parameters) + 'WhatIf', 'Confirm')
        }
    }

    It 'has a syntax for each parameter set' {
        @($help.syntax.syntaxItem).Count | Should -Be @((Get-Command $name).ParameterSets).Count
    }

    It 'names its inputs and outputs' {
        @($help.inputTypes.inputType).Count | Should -BeGreaterOrEqual 1
        @($help.returnValues.returnValue).Count | Should -BeGreaterOrEqual 1
    }
}

Describe 'about_PSTcp' {
    It 'exists and covers the concepts' {
        $about = Get-Help about_PSTcp | Out-String
        foreach ($word in 'DropOldest', 'DropNewest', 'Wait', 'TcpConsumerJob', 'MaxLineLength', 'PortInUse', 'ConnectionNotFound') {
            $about | Should -BeLike "*$word*"
        }
    }
}

Describe 'Example <Command>: <Title>' -ForEach $Examples {
    It 'runs without errors' {
        $result = Invoke-InChildPwsh $Code -TimeoutSeconds 30
        $detail = "it printed:`n$($result.Output)`n$($result.Errors)"
        $result.TimedOut | Should -BeFalse -Because "the example must finish within 30 s; $detail"
        $result.ExitCode | Should -Be 0 -Because $detail
        $result.Errors | Should -BeNullOrEmpty -Because $detail
    }
}

Describe 'HelpBuilder' {
    BeforeAll {
        function New-Metadata([string[]] $ParameterNames, [string] $Command = 'Get-Thing') {
            $parameters = foreach ($p in $ParameterNames) {
                @{ Name = $p; Type = 'System.String'; IsSwitch = $false; Aliases = @(); Globbing = $false; Values = @()
                    Sets = @(@{ Name = '__AllParameterSets'; Position = $null; Mandatory = $false; ByValue = $false; ByPropertyName = $false }) }
            }
            @(@{ Name = $Command; Verb = 'Get'; Noun = 'Thing'; HelpFile = 'PSTcp.dll-Help.xml'; SupportsShouldProcess = $false
                    DefaultParameterSet = '__AllParameterSets'; OutputTypes = @('System.String'); Parameters = @($parameters)
                    ParameterSets = @(@{ Name = '__AllParameterSets'; IsDefault = $true; Parameters = $ParameterNames })
                }) | ConvertTo-Json -Depth 8 -AsArray | Set-Content (Join-Path $TestDrive 'meta.json')
        }
        function New-Source([string] $Parameters) {
            $dir = Join-Path $TestDrive "src-$([guid]::NewGuid().ToString('n'))"
            $null = New-Item -ItemType Directory $dir
            Set-Content (Join-Path $dir 'Get-Thing.md') -Value @"
# Get-Thing

## SYNOPSIS
Gets a thing.

## DESCRIPTION
Gets a thing, really.

## PARAMETERS
$Parameters

## INPUTS

### None
Nothing.

## OUTPUTS

### System.String
The thing.

## EXAMPLES

### Example 1: One
``````powershell
Get-Thing
``````
Gets it.

### Example 2: Two
``````powershell
Get-Thing -Name x
``````
Gets x.
"@
            $dir
        }
        function Invoke-Builder([string] $SourceDir) {
            & $Builder -Source $SourceDir -Destination (Join-Path $TestDrive 'out/en-US') -MetadataPath (Join-Path $TestDrive 'meta.json') 6>$null
        }
    }

    It 'writes MAML when the help matches the cmdlets' {
        New-Metadata 'Name'
        Invoke-Builder (New-Source "### -Name`nThe name.`n`nDefault value: None")
        $xml = [xml](Get-Content (Join-Path $TestDrive 'out/en-US/PSTcp.dll-Help.xml') -Raw)
        $xml.helpItems.command.details.name | Should -Be 'Get-Thing'
        $xml.helpItems.command.parameters.parameter.name | Should -Be 'Name'
    }

    It 'fails when a parameter has no description' {
        New-Metadata 'Name', 'Extra'
        { Invoke-Builder (New-Source "### -Name`nThe name.`n`nDefault value: None") } | Should -Throw '*-Extra has no description*'
    }

    It 'fails when the help describes a parameter the cmdlet lacks' {
        New-Metadata 'Name'
        { Invoke-Builder (New-Source "### -Name`nThe name.`n`nDefault value: None`n`n### -Gone`nOld.`n`nDefault value: 1") } |
            Should -Throw '*describes parameter -Gone*'
    }

    It 'fails when a cmdlet has no help source' {
        New-Metadata 'Name' -Command 'Get-Thing'
        $json = Get-Content (Join-Path $TestDrive 'meta.json') -Raw | ConvertFrom-Json
        $other = $json[0].PSObject.Copy(); $other.Name = 'Get-Other'
        ConvertTo-Json @($json[0], $other) -Depth 8 | Set-Content (Join-Path $TestDrive 'meta.json')
        { Invoke-Builder (New-Source "### -Name`nThe name.`n`nDefault value: None") } | Should -Throw '*Get-Other: no help source*'
    }
}

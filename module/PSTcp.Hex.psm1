# Format-Hex for TcpMessages: a proxy of the built-in Format-Hex that shows a message's Data
# (its bytes) and hands everything else to the built-in unchanged. Its parameters are the
# built-in's own, copied when it is called, so it takes exactly what the installed version takes.

function Format-Hex {
    <#
    .ForwardHelpTargetName Microsoft.PowerShell.Utility\Format-Hex
    .ForwardHelpCategory Cmdlet
    #>
    [CmdletBinding(DefaultParameterSetName = 'Path', HelpUri = 'https://go.microsoft.com/fwlink/?LinkId=2096611')]
    param()

    dynamicparam {
        $parameters = [System.Management.Automation.RuntimeDefinedParameterDictionary]::new()
        $builtIn = $ExecutionContext.InvokeCommand.GetCommand('Microsoft.PowerShell.Utility\Format-Hex', [System.Management.Automation.CommandTypes]::Cmdlet)
        foreach ($parameter in $builtIn.Parameters.Values) {
            if ([System.Management.Automation.Cmdlet]::CommonParameters.Contains($parameter.Name)) { continue }
            $parameters.Add($parameter.Name, [System.Management.Automation.RuntimeDefinedParameter]::new(
                $parameter.Name, $parameter.ParameterType, $parameter.Attributes))
        }

        $parameters
    }

    begin {
        # A TcpMessage given to -InputObject: its bytes, as one item.
        $bound = @{} + $PSBoundParameters
        if ($bound['InputObject'] -is [PSTcp.TcpMessage]) { $bound['InputObject'] = $bound['InputObject'].Data }
        $builtIn = $ExecutionContext.InvokeCommand.GetCommand('Microsoft.PowerShell.Utility\Format-Hex', [System.Management.Automation.CommandTypes]::Cmdlet)
        $pipeline = { & $builtIn @bound }.GetSteppablePipeline($MyInvocation.CommandOrigin)
        $pipeline.Begin($PSCmdlet)
    }

    process {
        if ($_ -is [PSTcp.TcpMessage]) {
            # A message's Data as one block, not byte by byte.
            $pipeline.Process($_.Data)
        }
        elseif ($MyInvocation.ExpectingInput) {
            $pipeline.Process($_)
        }
        else {
            $pipeline.Process()
        }
    }

    end {
        $pipeline.End()
    }
}

Export-ModuleMember -Function Format-Hex

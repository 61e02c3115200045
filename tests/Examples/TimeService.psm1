# A small piece of "production" code used by tests/MockingExample.Tests.ps1: a client for a
# line-based TCP time service. It asks with the line TIME and gets back one line holding an
# ISO 8601 UTC timestamp.

function Get-RemoteTime {
    <#
    .SYNOPSIS
        Asks a TCP time service for the current time and returns it as a UTC [datetime].
    .EXAMPLE
        Get-RemoteTime -HostName time.example.internal -Port 7013
    #>
    [CmdletBinding()]
    [OutputType([datetime])]
    param(
        [Parameter(Mandatory)] [string] $HostName,
        [Parameter(Mandatory)] [int] $Port,
        [TimeSpan] $Timeout = [TimeSpan]::FromSeconds(5)
    )
    $connection = Connect-TcpEndpoint -HostName $HostName -Port $Port -Timeout $Timeout -ErrorAction Stop
    try {
        Send-TcpLine -Connection $connection -Line 'TIME' -ErrorAction Stop
        $answer = Receive-TcpMessage -Connection $connection -Count 1 -Timeout $Timeout -ErrorAction Stop |
            Select-Object -First 1
        $parsed = [DateTimeOffset]::MinValue
        $styles = [System.Globalization.DateTimeStyles]::AssumeUniversal
        if (-not [DateTimeOffset]::TryParse($answer.Text, [cultureinfo]::InvariantCulture, $styles, [ref] $parsed)) {
            throw "The time service at ${HostName}:$Port answered '$($answer.Text)', which is not a time."
        }
        $parsed.UtcDateTime
    } finally {
        $connection | Disconnect-TcpEndpoint
    }
}

Export-ModuleMember -Function Get-RemoteTime

# Registers PSTcp's Pester assertion, Should -HaveReceivedTcpMessage, when Pester 5 is loaded.
# PSTcp runs this on import (and Register-TcpShouldOperator runs it on demand); registering the
# same operator again is harmless.
#
#   $fake | Should -HaveReceivedTcpMessage 'HELO*' [-Count 2] [-Timeout 2]
#   $fake | Should -Not -HaveReceivedTcpMessage 'QUIT' -Timeout 0.5
#
# It waits (Wait-TcpMessage) for messages on the server or connection piped in, and on failure
# shows what was expected beside every message that did arrive.
if (-not (Get-Command Add-ShouldOperator -ErrorAction Ignore)) { return }
Add-ShouldOperator -Name HaveReceivedTcpMessage -Test {
    param($ActualValue, [string] $ExpectedValue = '*', [int] $Count = 1, [object] $Timeout, [switch] $Negate, [string] $Because)
    $source = @($ActualValue)
    if ($source.Count -ne 1 -or -not ($source[0] -is [PSTcp.TcpServer] -or $source[0] -is [PSTcp.TcpConnection])) {
        return [pscustomobject]@{ Succeeded = $false; FailureMessage = "Expected a PSTcp TcpServer or TcpConnection to be piped in, but got $(if ($null -eq $ActualValue) { '$null' } else { $source[0].GetType().FullName })." }
    }
    if ($null -eq $Timeout) { $Timeout = if ($Negate) { 0.5 } else { 5 } }
    $parameters = @{ Match = $ExpectedValue; Count = $Count; Timeout = $Timeout; ErrorAction = 'SilentlyContinue'; ErrorVariable = 'waitErrors' }
    if ($source[0] -is [PSTcp.TcpServer]) { $parameters.Server = $source[0] } else { $parameters.Connection = $source[0] }
    $waitErrors = $null
    $matched = @(Wait-TcpMessage @parameters)
    $timedOut = @($waitErrors | Where-Object { $_.FullyQualifiedErrorId -like 'ReceiveTimeout*' })
    $others = @($waitErrors | Where-Object { $_.FullyQualifiedErrorId -notlike 'ReceiveTimeout*' })
    $because = if ($Because) { " because $Because" } else { '' }
    $also = if ($others) { "`nThe server also reported: $(($others | ForEach-Object { $_.Exception.Message }) -join '; ')" } else { '' }
    if ($Negate) {
        if ($matched.Count -ge $Count) {
            return [pscustomobject]@{ Succeeded = $false; FailureMessage = "Expected no message like '$ExpectedValue'$because, but received: $(($matched | ForEach-Object { "'$($_.Text)'" }) -join ', ').$also" }
        }
        return [pscustomobject]@{ Succeeded = $true; FailureMessage = $null }
    }
    if ($matched.Count -ge $Count) {
        return [pscustomobject]@{ Succeeded = $true; FailureMessage = $null }
    }
    $detail = if ($timedOut) { $timedOut[0].Exception.Message } else { "Expected $Count message(s) like '$ExpectedValue', but $($matched.Count) arrived." }
    [pscustomobject]@{ Succeeded = $false; FailureMessage = "$detail$(if ($Because) { "`n(because $Because)" })$also" }
}

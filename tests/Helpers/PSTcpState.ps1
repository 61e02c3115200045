# PSTcp objects of this process: type names and best-effort teardown.

function Get-TypeNames {
    param([Parameter(Mandatory, Position = 0)] $InputObject)
    $InputObject.PSObject.TypeNames
}

function Clear-PSTcpState {
    <#
    .SYNOPSIS
        Best-effort teardown for AfterEach/AfterAll: removes consumer jobs, closes client
        connections and stops servers of this process. Never throws.
    #>
    param([switch] $KeepJobs)
    if (-not $KeepJobs) {
        try { Get-Job | Where-Object PSJobTypeName -eq 'TcpConsumerJob' | Remove-Job -Force -ErrorAction SilentlyContinue } catch { }
    }
    # Closed ones too: a connection the peer closed stays listed until disconnected.
    try { Get-TcpConnection -ErrorAction SilentlyContinue | Disconnect-TcpEndpoint -Timeout 1 -WarningAction SilentlyContinue -ErrorAction SilentlyContinue } catch { }
    try { Get-TcpServer -ErrorAction SilentlyContinue | Where-Object State -in 'Running', 'Suspended' | Stop-TcpServer -Timeout 1 -Confirm:$false -ErrorAction SilentlyContinue -WarningAction SilentlyContinue } catch { }
}

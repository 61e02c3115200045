@{
    RootModule           = 'PSTcp.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '6f0f3c1e-6a1b-4b8e-9a57-2f3d1c9e7b42'
    Author               = 'PSTcp contributors'
    CompanyName          = 'PSTcp'
    Copyright            = '(c) PSTcp contributors. MIT License.'
    Description          = 'Scriptable TCP messaging: echo servers, clients and background consumer jobs for lines over TCP, as compiled cmdlets.'
    PowerShellVersion    = '5.1'
    # Update-Help reads PSTcp_<GUID>_HelpInfo.xml here: the build's out/PSTcpHelp, published with
    # each release (Update-Help -SourcePath installs the same files offline).
    HelpInfoURI          = 'https://github.com/PSTcp/PSTcp/releases/latest/download/'
    CompatiblePSEditions = @('Core', 'Desktop')
    FormatsToProcess     = @('PSTcp.format.ps1xml')
    TypesToProcess       = @('PSTcp.types.ps1xml')
    NestedModules        = @('PSTcp.Hex.psm1')
    CmdletsToExport      = @(
        'Start-TcpEchoServer'
        'Start-TcpServer'
        'Get-TcpServer'
        'Stop-TcpServer'
        'Connect-TcpEndpoint'
        'Send-TcpLine'
        'Send-TcpMessage'
        'Receive-TcpMessage'
        'Invoke-TcpRequest'
        'Get-TcpConnection'
        'Disconnect-TcpEndpoint'
        'Test-TcpEndpoint'
        'Add-TcpFault'
        'Get-TcpFault'
        'Remove-TcpFault'
        'Start-TcpRelay'
        'Enter-TcpSession'
        'New-TcpReply'
        'Suspend-TcpServer'
        'Resume-TcpServer'
        'Wait-TcpMessage'
        'Register-TcpShouldOperator'
    )
    FunctionsToExport    = @('Format-Hex')
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('TCP', 'Sockets', 'Network', 'Echo', 'Server', 'Client', 'TLS', 'Pester', 'Testing', 'PSEdition_Core', 'PSEdition_Desktop', 'Windows', 'Linux', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://github.com/PSTcp/PSTcp'
            ReleaseNotes = @'
0.1.0 - first release.
- Start-TcpEchoServer: a line echo server (LF framing, CRLF tolerated, byte-exact echo) that queues every line as a TcpMessage.
- Start-TcpServer: per-line scriptblock handlers, or a -Broadcast hub relaying lines between clients.
- Connect-TcpEndpoint, Send-TcpLine (batched; one-shot -HostName/-Port), Receive-TcpMessage, Get-TcpConnection, Disconnect-TcpEndpoint.
- Bounded queues per server and connection with DropOldest, DropNewest or lossless Wait; consumer jobs (Receive-TcpMessage -AsJob) that work with the job cmdlets.
- Limits (line length, connections, idle timeout), TLS, IPv4/IPv6, errors with stable ids; Remove-Module stops everything.
'@
        }
    }
}

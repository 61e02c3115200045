# Helpers shared by the PSTcp Pester tests, one file per concern under tests/Helpers (dot-sourced
# here, so they share this module's scope). Every function is exported: this module has no
# Export-ModuleMember, so a helper added to any of the files is exported too.

Set-StrictMode -Version 3.0

$script:Utf8 = [System.Text.UTF8Encoding]::new($false)

# Get-PwshCommand: how to start a child pwsh (the build's copy, shared with build.ps1 and bench/).
. "$PSScriptRoot/../build/Pwsh.ps1"
. "$PSScriptRoot/Helpers/Waiting.ps1"
. "$PSScriptRoot/Helpers/Bytes.ps1"
. "$PSScriptRoot/Helpers/RawSockets.ps1"
. "$PSScriptRoot/Helpers/Background.ps1"
. "$PSScriptRoot/Helpers/ChildPwsh.ps1"
. "$PSScriptRoot/Helpers/Certificates.ps1"
. "$PSScriptRoot/Helpers/PSTcpState.ps1"
. "$PSScriptRoot/Helpers/Programs.ps1"

<#
.SYNOPSIS
    The seed's scenario end to end: an echo server on 8888 whose messages flow to a consumer
    job, and a client that sends lines and prints their echoes.
.DESCRIPTION
    The client is an Enter-TcpSession: each line of standard input is sent as soon as it is
    read when input is redirected (the demo ends at its end); in a terminal you type lines
    until Ctrl+D. Each echo the client receives is printed as "echo: value" as it arrives, and
    each message the consumer job emits as "---> value", as the seed's consumer did. Without
    any input the demo says how to give some.
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/PSTcp'),
    [int] $Port = 8888
)

$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

try {
    $server = Start-TcpEchoServer -Port $Port -Name Demo
}
catch {
    if ($_.FullyQualifiedErrorId -notlike 'PortInUse*') { throw }
    $server = Start-TcpEchoServer -Port 0 -Name Demo
    Write-Host "Port $Port is taken; using free port $($server.Port) instead."
}

Write-Host "Echo server '$($server.Name)' listening on $($server.LocalEndPoint)."
$consumer = Receive-TcpMessage -Server $server -AsJob -Name DemoConsumer
Write-Host "Consumer job: $($consumer.Name) (Id $($consumer.Id))."

function Show-Consumed {
    foreach ($message in Receive-Job $consumer) { Write-Host "---> $($message.Text)" }
}

if ([Console]::IsInputRedirected) { Write-Host 'Sending each line of standard input as it arrives.' }

# The session streams: a line is sent when it is read, and its echo handled when it arrives.
# At the end of input it half-closes, so every echo still comes back before it ends.
Enter-TcpSession -HostName 127.0.0.1 -Port $server.Port -PassThru | ForEach-Object {
    Write-Host "echo: $($_.Text)"
    Show-Consumed
}

$server | Stop-TcpServer
# Stopping completes the queue: the job hands over what is left and ends Completed.
$null = $consumer | Wait-Job -Timeout 10
Show-Consumed
if ($server.MessagesReceived -eq 0) {
    Write-Host "No input, so nothing was sent. Pipe some lines in: printf 'a\nb\n' | dotnet pwsh ./build.ps1 Demo"
    Write-Host 'or run it in a terminal and type lines (Ctrl+D on an empty line ends).'
}
Write-Host "Server received $($server.MessagesReceived) line(s); consumer job $($consumer.State)."
$consumer | Remove-Job -Force

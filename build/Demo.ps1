<#
.SYNOPSIS
    The seed's scenario end to end: an echo server on 8888 whose messages flow to a consumer
    job, and a client that sends lines and prints their echoes.
.DESCRIPTION
    Lines come from standard input when it is redirected (the demo ends at its end), otherwise
    a few sample lines are sent. Each echo the client receives is printed as "echo: value" and
    each message the consumer job emits as "---> value", as the seed's consumer did.
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
$client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
Write-Host "Client connected from $($client.LocalEndPoint). Consumer job: $($consumer.Name) (Id $($consumer.Id))."

function Show-Consumed {
    foreach ($message in Receive-Job $consumer) { Write-Host "---> $($message.Text)" }
}

$lines = if ([Console]::IsInputRedirected) {
    Write-Host 'Sending the lines of standard input.'
    # Lazily, so a long input streams instead of being read whole first.
    & { while ($null -ne ($line = [Console]::In.ReadLine())) { $line } }
}
else {
    Write-Host 'Standard input is a terminal: sending sample lines.'
    'hello', 'distributed systems talk TCP', 'the consumer runs asynchronously', 'bye'
}

$sent = 0
foreach ($line in $lines) {
    Send-TcpLine -Connection $client -Line $line
    $sent++
    foreach ($echo in Receive-TcpMessage -Connection $client -Count 1 -Timeout 00:00:05) {
        Write-Host "echo: $($echo.Text)"
    }
    Show-Consumed
}

$client | Disconnect-TcpEndpoint
$server | Stop-TcpServer
# Stopping completes the queue: the job hands over what is left and ends Completed.
$null = $consumer | Wait-Job -Timeout 10
Show-Consumed
Write-Host "Sent $sent line(s); server received $($server.MessagesReceived); consumer job $($consumer.State)."
$consumer | Remove-Job -Force

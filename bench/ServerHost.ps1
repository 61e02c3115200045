#requires -Version 7.0
<#
.SYNOPSIS
    The PSTcp side of the benchmark: one server in this (child) pwsh, driven over stdin.
.DESCRIPTION
    Started by Invoke-Benchmark.ps1 as a child process. Imports the module, starts one server
    through the public cmdlets only, prints its port as the first line of stdout, then answers
    one command per line on stdin until end of input or "quit", and stops the server:

      heap <bytes>     waits (at most 10 s) until the server's BytesReceived reaches <bytes>,
                       then prints "heap <n>": the managed heap after a full collection
                       ([GC]::GetTotalMemory($true)).
      stopjob <tries>  <tries> times: starts a consumer job on the server, waits (at most 5 s)
                       until it holds output, times Stop-Job, removes the job; prints
                       "stopjob <ms>,<ms>,...".

    A cmdlet or parameter the server needs that this module does not have (yet) is reported as
    one line "SKIP <reason>" instead of a port, and the script exits 0.
.PARAMETER Kind
    Echo (Start-TcpEchoServer) or Relay (Start-TcpRelay to -TargetPort on 127.0.0.1).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [ValidateSet('Echo', 'Relay')] [string] $Kind = 'Echo',
    [switch] $NoQueue,
    [string] $Framing,
    [int] $TargetPort
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Import-Module $ModulePath

function Skip([string] $Reason) { [Console]::Out.WriteLine("SKIP $Reason"); [Console]::Out.Flush(); exit 0 }

$command = if ($Kind -eq 'Relay') { 'Start-TcpRelay' } else { 'Start-TcpEchoServer' }
$cmd = Get-Command $command -Module PSTcp -ErrorAction SilentlyContinue
if (-not $cmd) { Skip "$command is not in this build of PSTcp" }
# Nobody consumes the queue unless asked (stopjob): DropOldest keeps the echo flowing. The
# benchmark holds up to 10,000 idle connections at once, above the default limit. These are
# left out where the command does not take them; what the scenario needs is not.
$arguments = @{ Port = 0 }
$optional = @{ MaxConnections = 20000 }
if ($NoQueue) { $arguments.NoQueue = $true } else { $optional.QueueCapacity = 10000; $optional.QueueFullMode = 'DropOldest' }
if ($Framing) { $arguments.Framing = $Framing }
if ($Kind -eq 'Relay') { $arguments.TargetHost = '127.0.0.1'; $arguments.TargetPort = $TargetPort }
foreach ($name in @($arguments.Keys)) {
    if (-not $cmd.Parameters.ContainsKey($name)) { Skip "$command has no -$name parameter in this build of PSTcp" }
}
foreach ($name in @($optional.Keys)) {
    if ($cmd.Parameters.ContainsKey($name)) { $arguments[$name] = $optional[$name] }
}

$server = & $command @arguments
[Console]::Out.WriteLine($server.Port)
[Console]::Out.Flush()

function Wait-Until([scriptblock] $Condition, [int] $TimeoutMs) {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    while (-not (& $Condition)) {
        if ($sw.ElapsedMilliseconds -ge $TimeoutMs) { return $false }
        Start-Sleep -Milliseconds 5
    }
    $true
}

try {
    while ($null -ne ($line = [Console]::In.ReadLine())) {
        $verb, $arg = $line.Trim() -split '\s+', 2
        switch ($verb) {
            'heap' {
                $want = [long]($arg ?? 0)
                $null = Wait-Until { $server.BytesReceived -ge $want } 10000
                [Console]::Out.WriteLine("heap $([GC]::GetTotalMemory($true))")
            }
            'stopjob' {
                $times = foreach ($i in 1..[int]($arg ?? 1)) {
                    $job = Receive-TcpMessage -Server $server -AsJob
                    try {
                        $null = Wait-Until { $job.HasMoreData } 5000
                        $sw = [Diagnostics.Stopwatch]::StartNew()
                        Stop-Job -Job $job
                        $sw.Elapsed.TotalMilliseconds.ToString('0.0', [Globalization.CultureInfo]::InvariantCulture)
                    } finally { Remove-Job -Job $job -Force }
                }
                [Console]::Out.WriteLine("stopjob $($times -join ',')")
            }
            'quit' { return }
            default { [Console]::Out.WriteLine("error unknown command '$verb'") }
        }
        [Console]::Out.Flush()
    }
} finally {
    $server | Stop-TcpServer
}

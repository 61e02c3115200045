#requires -Version 7.0
<#
.SYNOPSIS
    Per-call cost of the cmdlets a conversation script calls in a loop, against Get-Date.
.DESCRIPTION
    In this one process, each round times -Calls calls (default 10,000) of:
      Get-Date                                       a trivial compiled cmdlet, the yardstick
      Receive-TcpMessage -Connection $c -Count 1     with the message already queued
      Send-TcpMessage -Connection $c -Message 'x'    one message, to a server that reads (and answers nothing)
      Send-TcpLine -Connection $c -Line 'x'          one line
      Invoke-TcpRequest -Connection $c -Message 'x'  against an echo server (a real round trip)
    Each loop runs in a script block (compiled locals, as in a function), output to $null.
    Each round is cut into -Blocks blocks (default 10) with the commands alternating block by
    block, and takes each command's median block; the table shows each one's median µs per call
    over -Repeat rounds and its ratio to Get-Date's median in the same run (issue 22's target: ≤ 1.5).
    Ratios taken in one run are fairly robust to load; absolute figures are not.
    Writes <OutDir>/callcost-<stamp>.json and latest-callcost.json when -OutDir is given.
.EXAMPLE
    dotnet pwsh bench/Measure-CallCost.ps1 -ModulePath out/PSTcp -Calls 2000 -Repeat 1
#>
[CmdletBinding()]
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/PSTcp'),
    [ValidateRange(1, 1000000)] [int] $Calls = 10000,
    [ValidateRange(1, 99)] [int] $Repeat = 3,
    [ValidateRange(1, 1000)] [int] $Blocks = 10,
    [string] $OutDir
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Import-Module (Resolve-Path $ModulePath).ProviderPath

$echo = Start-TcpEchoServer -Port 0 -NoQueue
# The sends' peer reads and answers nothing: a broadcast hub with no other client.
$sink = Start-TcpServer -Port 0 -Broadcast -NoQueue
$receiver = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $echo.Port -QueueCapacity ($Calls + 16) -QueueFullMode DropOldest
$sender = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $sink.Port -QueueCapacity 1 -QueueFullMode DropOldest
$requester = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $echo.Port -QueueCapacity 16 -QueueFullMode DropOldest

# Fills the receiver's queue with $Calls echoed lines, then waits until all are there.
function Fill-Queue([int] $Count) {
    Send-TcpMessage -Connection $receiver -Message @(foreach ($i in 1..$Count) { "m$i" })
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while ($receiver.MessagesReceived -lt $script:expected) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "only $($receiver.MessagesReceived) of $script:expected echoes arrived" }
        Start-Sleep -Milliseconds 10
    }
}

$tests = [ordered]@{
    'Get-Date'                            = { param($n) foreach ($i in 1..$n) { $null = Get-Date } }
    'Receive-TcpMessage -Count 1 (queued)' = { param($n) foreach ($i in 1..$n) { $null = Receive-TcpMessage -Connection $receiver -Count 1 } }
    'Send-TcpMessage (one message)'       = { param($n) foreach ($i in 1..$n) { Send-TcpMessage -Connection $sender -Message 'x' } }
    'Send-TcpLine (one line)'             = { param($n) foreach ($i in 1..$n) { Send-TcpLine -Connection $sender -Line 'x' } }
    'Invoke-TcpRequest -Connection (echo)' = { param($n) foreach ($i in 1..$n) { $null = Invoke-TcpRequest -Connection $requester -Message 'x' } }
}

# Warm-up: JIT (tiered: the first round ran 3-5x slower with a tenth of a round of warm-up) and PowerShell's caches, half a round.
$script:expected = 0
foreach ($name in $tests.Keys) {
    $warm = [Math]::Max(1, [int]($Calls / 2))
    if ($name -like 'Receive*') {
        Send-TcpMessage -Connection $receiver -Message @(foreach ($i in 1..$warm) { "w$i" })
        $script:expected += $warm
        while ($receiver.MessagesReceived -lt $script:expected) { Start-Sleep -Milliseconds 10 }
    }
    $null = & $tests[$name] $warm
}

function Get-Median([double[]] $Values) {
    $sorted = $Values | Sort-Object
    $mid = [int][Math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$mid] } else { ($sorted[$mid - 1] + $sorted[$mid]) / 2 }
}

$samples = @{}
foreach ($name in $tests.Keys) { $samples[$name] = [System.Collections.Generic.List[double]]::new() }
# Each round is cut into -Blocks blocks, the commands alternating block by block, so that a
# burst of load elsewhere on the machine hits them all alike; a round's figure per command is
# the median of its blocks.
$chunk = [Math]::Max(1, [int][Math]::Floor($Calls / $Blocks))
foreach ($round in 1..$Repeat) {
    $script:expected += $chunk * $Blocks
    Fill-Queue ($chunk * $Blocks)
    [GC]::Collect()
    $blockTimes = @{}
    foreach ($name in $tests.Keys) { $blockTimes[$name] = [System.Collections.Generic.List[double]]::new() }
    foreach ($block in 1..$Blocks) {
        foreach ($name in $tests.Keys) {
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $null = & $tests[$name] $chunk
            $watch.Stop()
            $blockTimes[$name].Add($watch.Elapsed.TotalMilliseconds * 1000 / $chunk)
        }
    }
    foreach ($name in $tests.Keys) { $samples[$name].Add((Get-Median $blockTimes[$name])) }
}

$baseline = Get-Median $samples['Get-Date']
$rows = foreach ($name in $tests.Keys) {
    $median = Get-Median $samples[$name]
    [pscustomobject]@{
        Command    = $name
        'µs/call'  = [Math]::Round($median, 1)
        'x Get-Date' = [Math]::Round($median / $baseline, 2)
        Target     = if ($name -eq 'Get-Date') { '' } elseif ($median / $baseline -le 1.5) { '<= 1.5: met' } else { '<= 1.5: NOT met' }
        Rounds     = ($samples[$name] | ForEach-Object { [Math]::Round($_, 1) }) -join ' / '
    }
}

$receiver, $sender, $requester | Disconnect-TcpEndpoint
$echo, $sink | Stop-TcpServer

$load = if (Test-Path /proc/loadavg) { (Get-Content /proc/loadavg -Raw).Trim() } else { '' }
Write-Host "Per-call cost, $Calls calls x $Repeat rounds ($Blocks alternating blocks each), median; load average $load"
$rows | Format-Table -AutoSize | Out-Host
if ($OutDir) {
    $null = New-Item -ItemType Directory -Force $OutDir
    $json = [pscustomobject]@{ Calls = $Calls; Repeat = $Repeat; LoadAverage = $load; Rows = $rows } | ConvertTo-Json -Depth 4
    $stamp = Get-Date -Format 'yyyyMMdd-HHmmss'
    Set-Content -LiteralPath (Join-Path $OutDir "callcost-$stamp.json") -Value $json
    Set-Content -LiteralPath (Join-Path $OutDir 'latest-callcost.json') -Value $json
}


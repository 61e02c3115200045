#requires -Version 7.0
# Time parameters (about_PSTcp, TIME PARAMETERS): every TimeSpan parameter takes a bare number as
# seconds, unit strings and 'hh:mm:ss'; zero (where it means nothing), under a millisecond and
# overflow are refused with InvalidArgument, never read as ticks.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # The -Timeout that Connect-TcpEndpoint really used, from its verbose line.
    function Get-ConnectTimeout([object] $Value) {
        $verbose = Connect-TcpEndpoint 127.0.0.1 $script:server.Port -Timeout $Value -Verbose 4>&1 |
            Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -match 'timeout ([\d.]+) s' } |
            Select-Object -First 1
        $null = $verbose.Message -match 'timeout ([\d.]+) s'
        [double]$Matches[1]
    }

    # The terminating error a command ends with, or $null.
    function Get-Refusal([scriptblock] $Run) {
        $ErrorActionPreference = 'Stop'
        try { $null = & $Run; $null } catch { $_ }
    }
}

Describe 'Time parameters' {
    BeforeAll { $script:server = Start-TcpEchoServer -Port 0 }
    AfterAll { Clear-PSTcpState }
    AfterEach { Get-TcpConnection | Disconnect-TcpEndpoint }

    It 'reads <Value> (<Type>) as <Seconds> s' -ForEach @(
        @{ Value = 5; Type = 'int'; Seconds = 5 }
        @{ Value = [long]3; Type = 'long'; Seconds = 3 }
        @{ Value = 0.5; Type = 'double'; Seconds = 0.5 }
        @{ Value = [decimal]1.25; Type = 'decimal'; Seconds = 1.25 }
        @{ Value = '7'; Type = 'numeric string'; Seconds = 7 }
        @{ Value = '250ms'; Type = 'string'; Seconds = 0.25 }
        @{ Value = '5s'; Type = 'string'; Seconds = 5 }
        @{ Value = '2m'; Type = 'string'; Seconds = 120 }
        @{ Value = '1h'; Type = 'string'; Seconds = 3600 }
        @{ Value = '00:00:05'; Type = 'string'; Seconds = 5 }
        @{ Value = [timespan]::FromSeconds(4); Type = 'TimeSpan'; Seconds = 4 }
    ) {
        Get-ConnectTimeout $Value | Should -Be $Seconds
    }

    It 'refuses <Value> on Connect-TcpEndpoint -Timeout with InvalidArgument' -ForEach @(
        @{ Value = 0 }
        @{ Value = '0ms' }
        @{ Value = 0.0000001 }
        @{ Value = -1 }
        @{ Value = [timespan]::MaxValue }
        @{ Value = 1e20 }
        @{ Value = '1e20' }
    ) {
        $e = Get-Refusal { Connect-TcpEndpoint 127.0.0.1 $server.Port -Timeout $Value }
        $e | Should -Not -BeNullOrEmpty
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -Match '^-Timeout '
        @(Get-TcpConnection) | Should -HaveCount 0
    }

    It 'refuses [timespan]::MaxValue and 1e20 on every cmdlet, never with a raw ArgumentOutOfRangeException' -ForEach @(
        @{ Name = 'Connect-TcpEndpoint -RetryInterval'; Case = { param($v) Connect-TcpEndpoint 127.0.0.1 $server.Port -RetryCount 1 -RetryInterval $v } }
        @{ Name = 'Send-TcpLine -Timeout'; Case = { param($v) Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line x -Timeout $v } }
        @{ Name = 'Send-TcpLine -RetryInterval'; Case = { param($v) Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line x -RetryInterval $v } }
        @{ Name = 'Receive-TcpMessage -Timeout'; Case = { param($v) Receive-TcpMessage -Server $server -Timeout $v } }
        @{ Name = 'Start-TcpEchoServer -IdleTimeout'; Case = { param($v) Start-TcpEchoServer -Port 0 -IdleTimeout $v } }
        @{ Name = 'Start-TcpServer -IdleTimeout'; Case = { param($v) Start-TcpServer -Port 0 -ScriptBlock { $args[0].Text } -IdleTimeout $v } }
        @{ Name = 'Disconnect-TcpEndpoint -Timeout'; Case = { param($v) Connect-TcpEndpoint 127.0.0.1 $server.Port | Disconnect-TcpEndpoint -Timeout $v } }
        @{ Name = 'Stop-TcpServer -Timeout'; Case = { param($v) Stop-TcpServer -Server $server -Timeout $v } }
        @{ Name = 'Start-TcpRelay -ConnectTimeout'; Case = { param($v) Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $server.Port -ConnectTimeout $v } }
        @{ Name = 'Invoke-TcpRequest -Timeout'; Case = { param($v) Invoke-TcpRequest -HostName 127.0.0.1 -Port $server.Port -Message x -Count 1 -Timeout $v } }
        @{ Name = 'Test-TcpEndpoint -Timeout'; Case = { param($v) Test-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Timeout $v } }
    ) {
        foreach ($v in [timespan]::MaxValue, 1e20) {
            $e = Get-Refusal { & $Case $v }
            $e | Should -Not -BeNullOrEmpty -Because "$Name $v must be refused"
            $e.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*' -Because "$Name $v"
            $e.Exception | Should -Not -BeOfType [System.ArgumentOutOfRangeException]
        }
        $server.State | Should -Be 'Running' -Because 'a refused Stop-TcpServer stops nothing'
        @(Get-TcpServer) | Should -HaveCount 1 -Because 'a refused start binds nothing'
    }

    It 'refuses zero where zero means nothing: <Name>' -ForEach @(
        @{ Name = 'Send-TcpLine -Timeout'; Case = { Send-TcpLine -HostName 127.0.0.1 -Port $server.Port -Line x -Timeout 0 } }
        @{ Name = 'Connect-TcpEndpoint -RetryInterval'; Case = { Connect-TcpEndpoint 127.0.0.1 $server.Port -RetryCount 1 -RetryInterval 0 } }
        @{ Name = 'Receive-TcpMessage -Timeout'; Case = { Receive-TcpMessage -Server $server -Timeout '0s' } }
    ) {
        $e = Get-Refusal $Case
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
        $e.Exception.Message | Should -Match 'at least 1 ms'
    }

    It 'takes -IdleTimeout 0 as never, and a number as seconds' {
        # The server's settings show in its list view.
        $never = Start-TcpEchoServer -Port 0 -IdleTimeout 0
        ($never | Format-List | Out-String) | Should -Match 'Limits\s*:\s*line 64 KB, idle never'
        $timed = Start-TcpEchoServer -Port 0 -IdleTimeout 90
        ($timed | Format-List | Out-String) | Should -Match 'Limits\s*:\s*line 64 KB, idle 00:01:30'
        $never, $timed | Stop-TcpServer
        (Get-Refusal { Start-TcpEchoServer -Port 0 -IdleTimeout 0.0001 }).FullyQualifiedErrorId | Should -BeLike 'InvalidArgument,*'
    }

    It 'makes Receive-TcpMessage -Timeout 1 wait one second, not one tick' {
        $r = Invoke-Captured { Receive-TcpMessage -Server $server -Count 1 -Timeout 1 }
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'ReceiveTimeout*'
        $r.Elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
        $r.Elapsed.TotalSeconds | Should -BeLessThan 5
    }

    It 'explains a value that is not a time' {
        $e = Get-Refusal { Connect-TcpEndpoint 127.0.0.1 $server.Port -Timeout 'soon' }
        $e.Exception.Message | Should -Match "'soon' is not a time"
    }
}

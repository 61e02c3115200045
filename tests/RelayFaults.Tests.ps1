# Faults on a relay (Add-TcpFault, Get-TcpFault, Remove-TcpFault) with real clients (redis-cli,
# redis-benchmark, python3 sockets) through Start-TcpRelay to a real redis-server; and relayed
# pairs sharing a ConversationId. Every test starts its own relay on a loopback port; timings are
# asserted with wide margins (a fault's delay is a lower bound the relay guarantees).

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $script:redisPort = Get-FreeTcpPort
    $script:redis = Start-TestProgram 'redis-server' @('--port', "$redisPort", '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no') -Port $redisPort

    # Runs a python3 script (its output, trimmed lines); {PORT} in it is replaced by the port.
    function Invoke-Python([string] $Script, [int] $Port) {
        $code = $Script.Replace('{PORT}', "$Port")
        $output = & python3 -c $code 2>&1
        if ($LASTEXITCODE -ne 0) { throw "python3 failed ($LASTEXITCODE): $output" }
        # Always an array, even of one line ($out[0] is the first line, not its first character).
        , @($output | ForEach-Object { "$_".Trim() })
    }

    function Invoke-RedisCli([int] $Port, [string[]] $Arguments) {
        $output = & redis-cli -h 127.0.0.1 -p $Port @Arguments 2>&1
        ($output | ForEach-Object { "$_" }) -join "`n"
    }

    function New-Relay {
        Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $script:redisPort
    }

    # One request/answer round on a python socket: the seconds it took and the reply bytes (repr).
    $script:RoundTrip = @'
import socket, time
s = socket.create_connection(('127.0.0.1', {PORT}))
for cmd in [b'GET fa\r\n', b'GET fb\r\n', b'GET fc\r\n']:
    t = time.time()
    s.sendall(cmd)
    data = b''
    while data.count(b'\r\n') < 2:
        data += s.recv(100)
    print('%.3f %r' % (time.time() - t, data))
s.close()
'@
}

AfterAll {
    Clear-PSTcpState
    Stop-TestProgram $script:redis
}

Describe 'Add-TcpFault on a relay to redis-server' {
    BeforeAll {
        $null = Invoke-RedisCli $redisPort @('SET', 'fa', 'A')
        $null = Invoke-RedisCli $redisPort @('SET', 'fb', 'B')
        $null = Invoke-RedisCli $redisPort @('SET', 'fc', 'C')
        $null = Invoke-RedisCli $redisPort @('SET', 'hundred', ('x' * 100))
        $null = Invoke-RedisCli $redisPort @('SET', 'big', ('y' * 10000))
    }
    AfterEach {
        Get-TcpServer | Stop-TcpServer
    }

    It 'Latency: redis-cli PING takes the latency more, and the fault says what it delayed' {
        $relay = New-Relay
        Invoke-RedisCli $relay.Port PING | Should -Be 'PONG'
        $fault = Add-TcpFault $relay -Type Latency -Latency 300ms -Jitter 20ms -Seed 7 -Direction ClientToTarget
        $fault.Type | Should -Be 'Latency'
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        Invoke-RedisCli $relay.Port PING | Should -Be 'PONG'
        $watch.Stop()
        $watch.Elapsed.TotalMilliseconds | Should -BeGreaterOrEqual 280
        $watch.Elapsed.TotalMilliseconds | Should -BeLessThan 3000
        $fault.Applied | Should -BeGreaterOrEqual 1
        $fault.Firings[-1].Message | Should -Be 'PING'
        $fault.Firings[-1].Direction | Should -Be 'ClientToTarget'
        $fault.Firings[-1].Detail | Should -Match '^delayed \d+ ms$'
        $fault.LastFired | Should -Not -BeNullOrEmpty
    }

    It 'Latency: redis-benchmark through the relay is bounded by it' {
        $relay = New-Relay
        $null = Add-TcpFault $relay -Type Latency -Latency 50ms -Direction TargetToClient
        $output = & redis-benchmark -h 127.0.0.1 -p $relay.Port -n 10 -c 1 -t get -q 2>&1 | Out-String
        $output | Should -Match 'GET: ([\d.]+) requests per second'
        $rps = [double]($output | Select-String 'GET: ([\d.]+) requests per second').Matches[0].Groups[1].Value
        # Ten sequential requests, each answered at least 50 ms late: 20 a second at most.
        $rps | Should -BeLessOrEqual 20.5
        $rps | Should -BeGreaterThan 0
    }

    It 'LimitData: the client gets exactly -ByteCount bytes, then the close' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type LimitData -ByteCount 10 -Direction TargetToClient
        $out = Invoke-Python @'
import socket
s = socket.create_connection(('127.0.0.1', {PORT}))
s.sendall(b'GET hundred\r\n')
got = b''
while True:
    d = s.recv(1000)
    if not d: break
    got += d
print(repr(got))
'@ $relay.Port
        $out | Should -Be "b'`$100\r\nxxxx'"
        $fault.Applied | Should -Be 1
        $fault.Firings[0].Detail | Should -Be 'closes after 10 bytes'
    }

    It 'Reset: the client sees ECONNRESET (python3) and redis-cli reports a reset' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Reset
        $out = Invoke-Python @'
import socket
s = socket.create_connection(('127.0.0.1', {PORT}))
s.sendall(b'PING\r\n')
try:
    d = s.recv(100)
    print('got %r' % d)
except ConnectionResetError as e:
    print('ECONNRESET')
'@ $relay.Port
        $out | Should -Be 'ECONNRESET'
        Invoke-RedisCli $relay.Port PING | Should -Match 'reset'
        $fault.Applied | Should -Be 2
    }

    It 'fires on the 2nd GET only (-Match GET* -AfterMessages 1 -Count 1)' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Latency -Latency 700ms -Match 'GET*' -AfterMessages 1 -Count 1 -Direction ClientToTarget
        $rounds = Invoke-Python $RoundTrip $relay.Port
        $rounds.Count | Should -Be 3
        $times = $rounds | ForEach-Object { [double]($_ -split ' ')[0] }
        $rounds[1] | Should -Match '\$1\\r\\nB\\r\\n'
        $times[1] | Should -BeGreaterOrEqual 0.65
        $times[0] | Should -BeLessThan 0.6
        $times[2] | Should -BeLessThan 0.6
        $fault.Applied | Should -Be 1
        $fault.Firings[0].Message | Should -Be 'GET fb'

        # The same with separate redis-cli runs: counted over the relay's connections.
        $reset = Add-TcpFault $relay -Type Reset -Match 'GET' -AfterMessages 1 -Count 1
        Invoke-RedisCli $relay.Port @('GET', 'fa') | Should -Be 'A'
        Invoke-RedisCli $relay.Port @('GET', 'fb') | Should -Match 'reset'
        Invoke-RedisCli $relay.Port @('GET', 'fc') | Should -Be 'C'
        $reset.Applied | Should -Be 1
    }

    It 'Bandwidth: 10 KB at 20 KB/s take about half a second' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Bandwidth -BytesPerSecond 20000 -Direction TargetToClient
        $out = Invoke-Python @'
import socket, time
s = socket.create_connection(('127.0.0.1', {PORT}))
t = time.time()
s.sendall(b'GET big\r\n')
got = 0
while got < 10010:
    d = s.recv(65536)
    if not d: break
    got += len(d)
print('%d %.3f' % (got, time.time() - t))
'@ $relay.Port
        $got, $seconds = $out[0] -split ' '
        [int]$got | Should -Be 10010
        [double]$seconds | Should -BeGreaterOrEqual 0.38
        [double]$seconds | Should -BeLessThan 4
        $fault.Applied | Should -BeGreaterOrEqual 1
    }

    It 'Slicer: the answer comes in small segments with delays between them' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Slicer -SliceSize 3 -SliceDelay 25ms -Direction TargetToClient
        $out = Invoke-Python @'
import socket, time
s = socket.create_connection(('127.0.0.1', {PORT}))
t = time.time()
s.sendall(b'GET hundred\r\n')
got = b''
reads = 0
while len(got) < 108:
    d = s.recv(1000)
    if not d: break
    got += d
    reads += 1
print('%d %d %.3f' % (len(got), reads, time.time() - t))
'@ $relay.Port
        $length, $reads, $seconds = $out[0] -split ' '
        [int]$length | Should -Be 108
        [int]$reads | Should -BeGreaterThan 5
        # 108 bytes in 3-byte slices (6 + 102, two messages): 34 delays of 25 ms.
        [double]$seconds | Should -BeGreaterOrEqual 0.75
        $fault.Firings[0].Detail | Should -Match 'slices'
    }

    It 'Timeout: forwarding stops and the connection is held, then -Delay closes it' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Timeout -Delay 600ms -Direction ClientToTarget
        $out = Invoke-Python @'
import socket, time
s = socket.create_connection(('127.0.0.1', {PORT}))
t = time.time()
s.sendall(b'PING\r\n')
d = s.recv(100)
print('%r %.3f' % (d, time.time() - t))
'@ $relay.Port
        $data, $seconds = $out[0] -split ' '
        $data | Should -Be "b''"
        [double]$seconds | Should -BeGreaterOrEqual 0.55
        [double]$seconds | Should -BeLessThan 5
        $fault.Applied | Should -Be 1
    }

    It 'Timeout without -Delay holds until Remove-TcpFault, which lets later traffic through' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type Timeout -Direction ClientToTarget
        $client = New-RawClient $relay.Port
        try {
            Send-RawBytes $client "PING`r`n"
            Wait-Until { $fault.Applied -eq 1 } -Timeout 10
            # Held: nothing comes back while the fault is on.
            $client.Poll(300000, [System.Net.Sockets.SelectMode]::SelectRead) | Should -BeFalse
            $fault | Remove-TcpFault
            $fault.Active | Should -BeFalse
            Send-RawBytes $client "PING`r`n"
            ConvertFrom-Bytes (Read-RawBytes $client 7 -Timeout 10) | Should -Be "+PONG`r`n"
        } finally {
            $client.Dispose()
        }
    }

    It 'SlowClose: the target''s close reaches the client -Delay late' {
        $relay = New-Relay
        $fault = Add-TcpFault $relay -Type SlowClose -Delay 700ms -Direction TargetToClient
        $out = Invoke-Python @'
import socket, time
s = socket.create_connection(('127.0.0.1', {PORT}))
s.sendall(b'QUIT\r\n')
d = s.recv(100)
t = time.time()
while s.recv(100):
    pass
print('%r %.3f' % (d, time.time() - t))
'@ $relay.Port
        $data, $seconds = $out[0] -split ' '
        $data | Should -Be "b'+OK\r\n'"
        [double]$seconds | Should -BeGreaterOrEqual 0.6
        [double]$seconds | Should -BeLessThan 5
        $fault.Applied | Should -Be 1
        $fault.Firings[0].Detail | Should -Be 'close delayed 700 ms'
    }

    It 'Remove-TcpFault stops a latency on an open connection' {
        $relay = New-Relay
        $client = New-RawClient $relay.Port
        try {
            $fault = Add-TcpFault $relay -Type Latency -Latency 600ms
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            Send-RawBytes $client "PING`r`n"
            ConvertFrom-Bytes (Read-RawBytes $client 7 -Timeout 10) | Should -Be "+PONG`r`n"
            $watch.Elapsed.TotalMilliseconds | Should -BeGreaterOrEqual 1150
            Get-TcpFault $relay | Remove-TcpFault
            @(Get-TcpFault $relay).Count | Should -Be 0
            $watch.Restart()
            Send-RawBytes $client "PING`r`n"
            ConvertFrom-Bytes (Read-RawBytes $client 7 -Timeout 10) | Should -Be "+PONG`r`n"
            $watch.Elapsed.TotalMilliseconds | Should -BeLessThan 1000
            $fault.Applied | Should -Be 2
        } finally {
            $client.Dispose()
        }
    }

    It 'a -ScriptBlock fault is removed when the block ends, also when it throws' {
        $relay = New-Relay
        $result = Add-TcpFault $relay -Type Latency -Latency 200ms -Direction ClientToTarget -Name Scoped -PassThru -ScriptBlock {
            param($Fault)
            $Fault.Active
            Invoke-RedisCli $relay.Port PING
        }
        $result[0] | Should -BeTrue
        $result[1] | Should -Be 'PONG'
        $result[2].Name | Should -Be 'Scoped'
        $result[2].Active | Should -BeFalse
        $result[2].Applied | Should -BeGreaterOrEqual 1
        @(Get-TcpFault $relay).Count | Should -Be 0

        { Add-TcpFault $relay -Type Reset -Name Leaky -ScriptBlock { throw 'the test failed' } } | Should -Throw '*the test failed*'
        @(Get-TcpFault $relay -Name Leaky).Count | Should -Be 0
        Invoke-RedisCli $relay.Port PING | Should -Be 'PONG'
    }

    It '-Probability with -Seed fires on the same messages every run' {
        $script = @'
import socket
s = socket.create_connection(('127.0.0.1', {PORT}))
for i in range(30):
    s.sendall(b'PING %d\r\n' % i)
    data = b''
    while data.count(b'\r\n') < 2:
        data += s.recv(100)
s.close()
'@
        $runs = foreach ($run in 1, 2) {
            $relay = New-Relay
            $fault = Add-TcpFault $relay -Type Latency -Latency 1ms -Probability 0.5 -Seed 1234 -Direction ClientToTarget
            $null = Invoke-Python $script $relay.Port
            ($fault.Firings | ForEach-Object Message) -join ','
            $relay | Stop-TcpServer
        }
        $runs[0] | Should -Be $runs[1]
        $count = ($runs[0] -split ',').Count
        $count | Should -BeGreaterThan 3
        $count | Should -BeLessThan 27
    }

    It 'lists faults in a table, and refuses what makes no fault' {
        $relay = New-Relay
        $null = Add-TcpFault $relay -Type Latency -Latency 10ms -Match 'GET*' -Name Slow
        $null = Add-TcpFault $relay -Type Bandwidth -BytesPerSecond 100 -Name Thin
        $table = Get-TcpFault $relay | Out-String -Width 120
        $table | Should -Match 'Slow\s+Latency\s+Both\s+0\s+True\s+10 ms; on ''GET\*'''
        $table | Should -Match 'Thin\s+Bandwidth'
        (Get-TcpFault -Name Thi*).Name | Should -Be 'Thin'
        { Add-TcpFault $relay -Type Latency -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*'
        { Add-TcpFault $relay -Type Slicer -Name Thin2 -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*'
        { Add-TcpFault $relay -Type Latency -Latency 1ms -Name Slow -ErrorAction Stop } | Should -Throw '*named*'
        $echo = Start-TcpEchoServer -Port 0
        { Add-TcpFault $echo -Type Reset -ErrorAction Stop } | Should -Throw '*not a relay*'
    }

    It '-Direction takes Toxiproxy''s Upstream and Downstream, and still refuses other words' {
        $relay = New-Relay
        (Add-TcpFault $relay -Type Latency -Latency 1ms -Direction Upstream -Name Up).Direction | Should -Be 'ClientToTarget'
        (Add-TcpFault $relay -Type Latency -Latency 1ms -Direction downstream -Name Down).Direction | Should -Be 'TargetToClient'
        (Add-TcpFault $relay -Type Latency -Latency 1ms -Direction TargetToClient -Name Plain).Direction | Should -Be 'TargetToClient'
        { Add-TcpFault $relay -Type Latency -Latency 1ms -Direction Sideways -ErrorAction Stop } | Should -Throw '*ClientToTarget*'
    }
}

Describe 'SlowClose when a side goes away abruptly' {
    AfterEach {
        Get-TcpServer | Stop-TcpServer
    }

    It 'a client''s reset reaches the target -Delay late' {
        $target = New-RawListener
        $client = $null; $peer = $null
        try {
            $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $target.LocalEndpoint.Port
            $fault = Add-TcpFault $relay -Type SlowClose -Delay 600ms -Direction ClientToTarget
            $client = New-RawClient $relay.Port
            $peer = Receive-RawConnection $target
            Send-RawBytes $client "hi`n"
            ConvertFrom-Bytes (Read-RawBytes $peer 3) | Should -Be "hi`n"
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            Reset-RawClient $client
            $null = Read-RawToEnd $peer -Timeout 10
            $watch.Elapsed.TotalMilliseconds | Should -BeGreaterOrEqual 550
            $fault.Applied | Should -Be 1
        } finally {
            Close-RawClient $client, $peer
            $target.Stop()
        }
    }
}

Describe 'Relayed pairs' {
    AfterEach {
        Get-TcpServer | Stop-TcpServer
    }

    It 'both directions of each of 30 concurrent clients share one ConversationId; ids differ between clients' {
        $echo = Start-TcpEchoServer -Port 0
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $echo.Port
        $clients = 1..30 | ForEach-Object { New-RawClient $relay.Port }
        try {
            for ($i = 0; $i -lt 30; $i++) { Send-RawBytes $clients[$i] "client-$i`n" }
            for ($i = 0; $i -lt 30; $i++) { ConvertFrom-Bytes (Read-RawBytes $clients[$i] ("client-$i".Length + 1)) | Should -Be "client-$i`n" }
            $messages = @(Receive-TcpMessage -Server $relay -Count 60 -Timeout 10)
        } finally {
            $clients | ForEach-Object { $_.Dispose() }
        }
        $messages.Count | Should -Be 60
        $byText = $messages | Group-Object Text
        $byText.Count | Should -Be 30
        foreach ($group in $byText) {
            $group.Count | Should -Be 2
            ($group.Group.Direction | Sort-Object) -join ',' | Should -Be 'ClientToTarget,TargetToClient'
            $toTarget = $group.Group | Where-Object Direction -EQ 'ClientToTarget'
            $toClient = $group.Group | Where-Object Direction -EQ 'TargetToClient'
            $toClient.ConversationId | Should -Be $toTarget.ConversationId
            $toTarget.ConversationId | Should -Be $toTarget.ConnectionId
            $toClient.ConnectionId | Should -Not -Be $toClient.ConversationId
        }
        @($messages | Select-Object -ExpandProperty ConversationId -Unique).Count | Should -Be 30
        ($messages | Where-Object Direction -EQ 'TargetToClient' | Select-Object -First 1 | Format-List | Out-String -Width 120) | Should -Match 'ConversationId'
    }

    It 'a relay shows its Target' {
        $echo = Start-TcpEchoServer -Port 0
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $echo.Port
        $relay.Target | Should -Be "127.0.0.1:$($echo.Port)"
        ($relay | Format-List | Out-String -Width 120) | Should -Match "Target\s+: 127\.0\.0\.1:$($echo.Port)"
        $echo.Target | Should -BeNullOrEmpty
        ($echo | Format-List | Out-String -Width 120) | Should -Not -Match 'Target'
    }
}

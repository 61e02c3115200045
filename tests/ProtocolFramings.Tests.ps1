# The framings real protocols use, against the real programs (Debian packages; .ci/run installs
# them): PostgreSQL (a type byte and a length that counts itself), MQTT (a header byte and a
# varint) with mosquitto and its clients, RFC 6587 octet-counted syslog from logger, and a
# header + body exchange with curl. Each test starts its own program on a free loopback port
# and skips, saying why, when the program is missing.

BeforeDiscovery {
    $pgBin = '/usr/lib/postgresql/15/bin'
    $script:noPostgres = if (-not (Test-Path "$pgBin/initdb")) { 'postgresql 15 is not installed' }
        elseif (-not (Get-Command runuser -CommandType Application -ErrorAction Ignore)) { 'runuser is missing' }
        elseif (-not (Get-Command id -CommandType Application -ErrorAction Ignore) -or (& id -u) -ne '0') { 'postgres must be started as the postgres user, which needs root' }
        elseif (-not (& id -u postgres 2>$null)) { 'there is no postgres user' }
    $script:noMosquitto = if (-not (Test-Path /usr/sbin/mosquitto)) { 'mosquitto is not installed' }
    $script:noMosquittoClients = if (-not (Get-Command mosquitto_pub -CommandType Application -ErrorAction Ignore) -or
        -not (Get-Command mosquitto_sub -CommandType Application -ErrorAction Ignore)) { 'mosquitto-clients is not installed' }
    $script:noLogger = if (-not (Get-Command logger -CommandType Application -ErrorAction Ignore)) { 'logger (bsdutils) is not installed' }
        elseif (-not ((& logger --help 2>&1 | Out-String) -match 'octet-count')) { 'this logger has no --octet-count' }
    $script:noCurl = if (-not (Get-Command curl -CommandType Application -ErrorAction Ignore)) { 'curl is not installed' }
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    $script:PgBin = '/usr/lib/postgresql/15/bin'
    $script:PgFraming = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixSize = 4; LengthAdjustment = -4 }
    $script:MqttFraming = @{ Framing = 'LengthPrefix'; PrefixOffset = 1; PrefixEncoding = 'Varint' }

    function Invoke-Bounded([string] $Seconds, [string] $Tool, [string[]] $Arguments, [string[]] $InputLines) {
        $output = if ($InputLines) { $InputLines | & timeout $Seconds $Tool @Arguments 2>&1 | Out-String }
            else { & timeout $Seconds $Tool @Arguments 2>&1 | Out-String }
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = $output }
    }

    # Starts a process that keeps running; its output is drained so it never blocks on a pipe.
    function Start-Program([string] $FileName, [string[]] $Arguments) {
        $info = [System.Diagnostics.ProcessStartInfo]::new($FileName)
        foreach ($a in $Arguments) { $info.ArgumentList.Add($a) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $process = [System.Diagnostics.Process]::Start($info)
        $process.BeginOutputReadLine()
        $process.BeginErrorReadLine()
        $process
    }

    function Stop-Program($Process) {
        if ($null -eq $Process) { return }
        try { if (-not $Process.HasExited) { $Process.Kill() } } catch { }
        $null = $Process.WaitForExit(5000)
        $Process.Dispose()
    }

    function Wait-Listening([int] $Port, $Process, [string] $What) {
        Wait-Until {
            if ($null -ne $Process -and $Process.HasExited) { throw "$What exited with code $($Process.ExitCode)" }
            $probe = New-RawClient $Port -Timeout 1
            $probe.Dispose()
            $true
        } -Timeout 30 -Because "$What listens on port $Port"
    }

    # MQTT 3.1.1 packets, each without its remaining-length field (the framing writes it).
    function New-MqttString([string] $Text) {
        $bytes = [System.Text.Encoding]::UTF8.GetBytes($Text)
        # The unary comma: a function's byte[] output would otherwise be unrolled into bytes.
        , [PSTcp.Bytes]::Join([PSTcp.Bytes]::UInt16BE($bytes.Length), $bytes)
    }
    function New-MqttConnect([string] $ClientId) {
        # CONNECT, protocol MQTT level 4, clean session, keep-alive 60 s.
        , [PSTcp.Bytes]::Join(0x10, (New-MqttString 'MQTT'), 4, 0x02, [PSTcp.Bytes]::UInt16BE(60), (New-MqttString $ClientId))
    }
}

Describe 'PostgreSQL with -PrefixOffset 1 -PrefixSize 4 -LengthAdjustment -4' -Skip:([bool]$noPostgres) {
    BeforeAll {
        # initdb once (seconds) for this Describe; a data directory the postgres user owns.
        $script:pgData = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-pg-$([guid]::NewGuid().ToString('N'))"
        $null = New-Item -ItemType Directory $pgData
        & chown postgres $pgData
        $init = & runuser -u postgres -- "$PgBin/initdb" -D $pgData -A trust -U postgres --no-sync --no-instructions 2>&1 | Out-String
        if ($LASTEXITCODE -ne 0) { throw "initdb failed: $init" }
        $script:pgPort = 0
        foreach ($try in 1..3) {
            $port = Get-FreeTcpPort
            $options = "-p $port -k $pgData -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=20"
            $start = & runuser -u postgres -- "$PgBin/pg_ctl" start -D $pgData -w -t 60 -l "$pgData/log" -o $options 2>&1 | Out-String
            if ($LASTEXITCODE -eq 0) { $script:pgPort = $port; break }
        }
        if (-not $pgPort) { throw "postgres didn't start: $start $(Get-Content "$pgData/log" -Raw -ErrorAction Ignore)" }

        # Startup (protocol 3.0, user postgres, trust): it has no type byte, so it goes out raw.
        function New-PgStartup {
            $body = [PSTcp.Bytes]::Join([PSTcp.Bytes]::UInt32BE(196608), [PSTcp.Bytes]::CString('user'), [PSTcp.Bytes]::CString('postgres'),
                [PSTcp.Bytes]::CString('database'), [PSTcp.Bytes]::CString('postgres'), 0)
            , [PSTcp.Bytes]::Join([PSTcp.Bytes]::UInt32BE($body.Length + 4), $body)
        }
        function New-PgQuery([string] $Sql, [switch] $WithLength) {
            $text = [PSTcp.Bytes]::CString($Sql)
            if ($WithLength) { , [PSTcp.Bytes]::Join('Q', [PSTcp.Bytes]::UInt32BE($text.Length + 4), $text) }
            else { , [PSTcp.Bytes]::Join('Q', $text) }
        }
        function Get-PgType($Message) { [string][char]$Message.Data[0] }
    }
    AfterAll {
        Clear-PSTcpState
        if ($pgPort) { $null = & runuser -u postgres -- "$PgBin/pg_ctl" stop -D $pgData -m immediate -w -t 30 2>&1 }
        Remove-Item $pgData -Recurse -Force -ErrorAction Ignore
    }
    AfterEach { Clear-PSTcpState }

    It 'starts up and runs SELECT 1 with one receive per protocol message' {
        $pg = Connect-TcpEndpoint 127.0.0.1 $pgPort @PgFraming
        Send-TcpMessage $pg (New-PgStartup) -Raw
        $types = [System.Collections.Generic.List[string]]::new()
        do {
            $m = @(Receive-TcpMessage $pg -Count 1 -Timeout 10)
            $m.Count | Should -Be 1
            $types.Add((Get-PgType $m[0]))
        } until ($types[-1] -eq 'Z' -or $types.Count -gt 50)
        # AuthenticationOk (R, code 0), ParameterStatus (S) several, BackendKeyData (K), ReadyForQuery (Z).
        $types[0] | Should -Be 'R'
        $types[-1] | Should -Be 'Z'
        $types | Should -Contain 'S'
        $types | Should -Contain 'K'

        Send-TcpMessage $pg (New-PgQuery 'SELECT 1')
        $reply = foreach ($i in 1..4) { Receive-TcpMessage $pg -Count 1 -Timeout 10 }
        ($reply | ForEach-Object { Get-PgType $_ }) -join '' | Should -Be 'TDCZ'
        # DataRow: one column, its length, its text.
        $row = $reply[1]
        $row.ReadInt16(1) | Should -Be 1
        $row.ReadString(7, $row.ReadInt32(3)) | Should -Be '1'
        $reply[2].ReadCString(1) | Should -Be 'SELECT 1'
        [char]$reply[3].Data[1] | Should -Be 'I'
        $pg.MessagesReceived | Should -Be ($types.Count + 4)
    }

    It 'reads a 10,000-row result at least 20 times faster than a Raw/-ByteCount script' {
        # The Raw script's rate: two reads per protocol message (type and length, then the rest).
        $raw = Connect-TcpEndpoint 127.0.0.1 $pgPort -Framing Raw
        Send-TcpMessage $raw (New-PgStartup) -Raw
        function Read-RawMessage($Connection) {
            $head = Receive-TcpMessage $Connection -ByteCount 5 -Timeout 10
            $rest = [PSTcp.Bytes]::ReadInt32($head.Data, 1) - 4
            if ($rest -gt 0) { $null = Receive-TcpMessage $Connection -ByteCount $rest -Timeout 10 }
            [char]$head.Data[0]
        }
        while ((Read-RawMessage $raw) -ne 'Z') { }
        $rawRows = 400
        Send-TcpMessage $raw (New-PgQuery "SELECT generate_series(1,$rawRows)" -WithLength)
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $n = 0
        do { $type = Read-RawMessage $raw; $n++ } until ($type -eq 'Z')
        $watch.Stop()
        $n | Should -Be ($rawRows + 3)
        $rawRate = $n / $watch.Elapsed.TotalSeconds

        # Lossless: more than the default 10,000 messages may wait at once.
        $pg = Connect-TcpEndpoint 127.0.0.1 $pgPort @PgFraming -QueueFullMode Wait
        Send-TcpMessage $pg (New-PgStartup) -Raw
        $null = Receive-TcpMessage $pg -Until '^Z' -Timeout 10
        Send-TcpMessage $pg (New-PgQuery 'SELECT generate_series(1,10000)')
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $messages = Receive-TcpMessage $pg -Until '^Z' -Timeout 30
        $watch.Stop()
        $messages.Count | Should -Be 10003
        $rows = @($messages | Where-Object { $_.Data[0] -eq 0x44 })
        $rows.Count | Should -Be 10000
        $rows[-1].ReadString(7, $rows[-1].ReadInt32(3)) | Should -Be '10000'
        $framedRate = $messages.Count / $watch.Elapsed.TotalSeconds
        Write-Host "PostgreSQL rows: framed $([int]$framedRate) messages/s, Raw/-ByteCount $([int]$rawRate) messages/s"
        $framedRate | Should -BeGreaterThan (20 * $rawRate) -Because "framed: $([int]$framedRate)/s, Raw/-ByteCount: $([int]$rawRate)/s"
    }
}

Describe 'MQTT with -PrefixOffset 1 -PrefixEncoding Varint' {
    AfterEach { Clear-PSTcpState }

    It 'answers 200 QoS 1 messages from mosquitto_pub with 200 PUBACKs as a fake broker' -Skip:([bool]$noMosquittoClients) {
        $broker = Start-TcpServer -Port 0 @MqttFraming -ScriptBlock {
            param($Message)
            $data = $Message.Data
            switch ($data[0] -shr 4) {
                1 { , [byte[]](0x20, 0, 0) }
                3 { if ($data[0] -band 0x06) { $at = 3 + $Message.ReadUInt16(1); , [byte[]](0x40, $data[$at], $data[$at + 1]) } }
                12 { , [byte[]](0xD0) }
            }
        }
        # Watched through a relay with the same framing: it sees each packet both ways and alters nothing.
        $relay = Start-TcpRelay -Port 0 -TargetHost 127.0.0.1 -TargetPort $broker.Port @MqttFraming
        $run = Invoke-Bounded 30 mosquitto_pub ('-h', '127.0.0.1', '-p', $relay.Port, '-q', '1', '-t', 'pstcp/test', '-i', 'pstcp-pub', '-l') (1..200 | ForEach-Object { "message $_" })
        $run.ExitCode | Should -Be 0 -Because $run.Output

        $published = @(Receive-TcpMessage -Server $broker -Count 202 -Timeout 10)
        # CONNECT, 200 PUBLISH, DISCONNECT.
        $published.Count | Should -Be 202
        @($published | Where-Object { ($_.Data[0] -shr 4) -eq 3 }).Count | Should -Be 200
        $last = $published | Where-Object { ($_.Data[0] -shr 4) -eq 3 } | Select-Object -Last 1
        $topicLength = $last.ReadUInt16(1)
        $last.ReadString(3, $topicLength) | Should -Be 'pstcp/test'
        $last.ReadString(5 + $topicLength, $last.Length - 5 - $topicLength) | Should -Be 'message 200'

        $seen = @(Receive-TcpMessage -Server $relay -Count 403 -Timeout 10)
        $acks = @($seen | Where-Object { $_.Direction -eq 'TargetToClient' -and $_.Data[0] -eq 0x40 })
        $acks.Count | Should -Be 200
        $acks | ForEach-Object { $_.Length | Should -Be 3 }
        @($seen | Where-Object { $_.Direction -eq 'TargetToClient' -and $_.Data[0] -eq 0x20 }).Count | Should -Be 1
        $broker.ErrorCount | Should -Be 0
    }

    It 'publishes to and subscribes from a real mosquitto' -Skip:([bool]($noMosquitto -or $noMosquittoClients)) {
        $port = Get-FreeTcpPort
        $config = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-mosquitto-$([guid]::NewGuid().ToString('N')).conf"
        Set-Content $config "listener $port 127.0.0.1`nallow_anonymous true`npersistence false`n"
        $mosquitto = Start-Program /usr/sbin/mosquitto '-c', $config
        try {
            Wait-Listening $port $mosquitto mosquitto

            $sub = Connect-TcpEndpoint 127.0.0.1 $port @MqttFraming
            Send-TcpMessage $sub (New-MqttConnect 'pstcp-sub')
            (Receive-TcpMessage $sub -Count 1 -Timeout 10).Data | Should -Be @(0x20, 0, 0)
            # SUBSCRIBE packet 1 to pstcp/#, QoS 1: SUBACK granting QoS 1.
            Send-TcpMessage $sub ([PSTcp.Bytes]::Join(0x82, [PSTcp.Bytes]::UInt16BE(1), (New-MqttString 'pstcp/#'), 1))
            (Receive-TcpMessage $sub -Count 1 -Timeout 10).Data | Should -Be @(0x90, 0, 1, 1)

            # mosquitto_pub to PSTcp's subscription.
            $run = Invoke-Bounded 20 mosquitto_pub '-h', '127.0.0.1', '-p', $port, '-t', 'pstcp/cli', '-m', 'from mosquitto_pub'
            $run.ExitCode | Should -Be 0 -Because $run.Output
            $got = Receive-TcpMessage $sub -Count 1 -Timeout 10
            $got.Data[0] | Should -Be 0x30
            $got.ReadString(3, $got.ReadUInt16(1)) | Should -Be 'pstcp/cli'
            $got.ReadString(3 + 9, $got.Length - 12) | Should -Be 'from mosquitto_pub'

            # PSTcp publishes with QoS 1 and retain: PUBACK, PSTcp's subscriber and a later mosquitto_sub get it.
            $pub = Connect-TcpEndpoint 127.0.0.1 $port @MqttFraming
            Send-TcpMessage $pub (New-MqttConnect 'pstcp-pub')
            $null = Receive-TcpMessage $pub -Count 1 -Timeout 10
            $payload = 'from PSTcp ' + ('x' * 300)
            Send-TcpMessage $pub ([PSTcp.Bytes]::Join(0x33, (New-MqttString 'pstcp/retained'), [PSTcp.Bytes]::UInt16BE(7), $payload))
            (Receive-TcpMessage $pub -Count 1 -Timeout 10).Data | Should -Be @(0x40, 0, 7)
            $delivered = Receive-TcpMessage $sub -Count 1 -Timeout 10
            $delivered.Data[0] -shr 4 | Should -Be 3
            $topic = $delivered.ReadUInt16(1)
            $delivered.ReadString($delivered.Length - $payload.Length, $payload.Length) | Should -Be $payload
            $cli = Invoke-Bounded 20 mosquitto_sub '-h', '127.0.0.1', '-p', $port, '-t', 'pstcp/retained', '-C', '1', '-W', '10'
            $cli.ExitCode | Should -Be 0 -Because $cli.Output
            $cli.Output.Trim() | Should -Be $payload
            Send-TcpMessage $pub ([byte[]]@(0xE0))
            Send-TcpMessage $sub ([byte[]]@(0xE0))
        } finally {
            Stop-Program $mosquitto
            Remove-Item $config -ErrorAction Ignore
        }
    }
}

Describe 'RFC 6587 octet counting from logger' -Skip:([bool]$noLogger) {
    AfterEach { Clear-PSTcpState }

    It 'receives one message per syslog record' {
        $server = Start-TcpServer -Port 0 -Framing OctetCount -ScriptBlock { }
        $lines = 'first record', 'second record', ('third ' + ('y' * 500))
        $run = Invoke-Bounded 20 logger ('--tcp', '--octet-count', '--server', '127.0.0.1', '--port', $server.Port, '--tag', 'pstcp', '--size', '4096') $lines
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $records = @(Receive-TcpMessage -Server $server -Count 3 -Timeout 10)
        $records.Count | Should -Be 3
        foreach ($i in 0..2) {
            # <PRI>… pstcp: MSG, no length or separator left in it.
            $records[$i].Text | Should -Match '^<\d+>'
            $records[$i].Text | Should -Match 'pstcp'
            $records[$i].Text.EndsWith($lines[$i]) | Should -BeTrue -Because $records[$i].Text
        }
        @(Receive-TcpMessage -Server $server -Timeout 0.3 -ErrorAction SilentlyContinue).Count | Should -Be 0
    }
}

Describe 'Header + body messages with curl' -Skip:([bool]$noCurl) {
    AfterEach { Clear-PSTcpState }

    It 'frames HTTP requests with Content-Length bodies and answers each as one message' {
        $server = Start-TcpServer -Port 0 -Framing Headers -ScriptBlock {
            param($Message)
            $text = $Message.Text
            $split = $text.IndexOf("`r`n`r`n")
            $body = $text.Substring($split + 4)
            $line = $text.Substring(0, $text.IndexOf("`r`n"))
            $answer = "$line|$($body.Length)|$body"
            "HTTP/1.1 200 OK`r`nContent-Type: text/plain`r`nContent-Length: $([System.Text.Encoding]::UTF8.GetByteCount($answer))`r`n`r`n$answer"
        }
        $url = "http://127.0.0.1:$($server.Port)"
        # Two requests on one kept-alive connection: a POST with a body, then a GET without one.
        $run = Invoke-Bounded 20 curl '-s', '--data-binary', "line one`r`n`r`nline two", "$url/post", '--next', '-s', "$url/get"
        $run.ExitCode | Should -Be 0 -Because $run.Output
        # (Out-String splits native output into lines: CR LF comes back as LF.)
        ($run.Output -replace "`r", '').TrimEnd("`n") | Should -Be "POST /post HTTP/1.1|20|line one`n`nline twoGET /get HTTP/1.1|0|"
        $requests = @(Receive-TcpMessage -Server $server -Count 2 -Timeout 10)
        $requests.Count | Should -Be 2
        $requests[0].ConnectionId | Should -Be $requests[1].ConnectionId
        $requests[0].Text | Should -Match '(?s)^POST /post HTTP/1\.1\r\n.*Content-Length: 20\r\n.*\r\n\r\nline one\r\n\r\nline two$'
        $requests[1].Text | Should -Match '(?s)^GET /get HTTP/1\.1\r\n.*\r\n\r\n$'
        $server.ErrorCount | Should -Be 0
    }
}

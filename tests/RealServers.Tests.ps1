# Conversations with real services over loopback, each started by its test on a free port:
# redis-server, memcached and python3's http.server (.ci/run installs what is missing).

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # Starts a server process and waits until its port accepts connections.
    function Start-ServerProcess([string] $FileName, [string[]] $Arguments, [int] $Port) {
        $info = [System.Diagnostics.ProcessStartInfo]::new($FileName)
        foreach ($a in $Arguments) { $info.ArgumentList.Add($a) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $process = [System.Diagnostics.Process]::Start($info)
        # Drained so that a chatty server never blocks on a full pipe.
        $process.BeginOutputReadLine()
        $process.BeginErrorReadLine()
        try {
            Wait-Until {
                if ($process.HasExited) { throw "$FileName exited with code $($process.ExitCode)" }
                $probe = New-RawClient $Port -Timeout 1
                $probe.Dispose()
                $true
            } -Timeout 15 -Because "$FileName listens on port $Port"
        } catch {
            Stop-ServerProcess $process
            throw
        }
        $process
    }

    function Stop-ServerProcess($Process) {
        if ($null -eq $Process) { return }
        try { if (-not $Process.HasExited) { $Process.Kill() } } catch { }
        $null = $Process.WaitForExit(5000)
        $Process.Dispose()
    }

    function Test-SameBytes([byte[]] $Actual, [byte[]] $Expected) {
        $Actual.Length -eq $Expected.Length -and [System.Linq.Enumerable]::SequenceEqual($Actual, $Expected)
    }

    # Bytes with CR, LF, CRLF, NUL and everything up to 0xFF in them.
    function New-BinaryValue([int] $Length, [int] $Seed) {
        $random = [System.Random]::new($Seed)
        $bytes = [byte[]]::new($Length)
        $random.NextBytes($bytes)
        for ($i = 0; $i -lt $Length; $i += 97) { $bytes[$i] = 0x0D; if ($i + 1 -lt $Length) { $bytes[$i + 1] = 0x0A } }
        , $bytes
    }
}

Describe 'redis-server' {
    BeforeAll {
        $port = Get-FreeTcpPort
        $redis = Start-ServerProcess 'redis-server' @('--port', "$port", '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no') $port
    }
    AfterAll {
        Clear-PSTcpState
        Stop-ServerProcess $redis
    }

    It 'answers Invoke-TcpRequest 127.0.0.1 <port> PING' {
        (Invoke-TcpRequest 127.0.0.1 $port PING).Text | Should -Be '+PONG'
    }

    It 'reads a 1 MB value whole on a Raw connection: -Until the header, then -ByteCount' {
        $value = New-BinaryValue 1MB 1
        $client = Connect-TcpEndpoint 127.0.0.1 $port -Framing Raw
        $set = Join-Bytes "*3`r`n`$3`r`nSET`r`n`$3`r`nbig`r`n`$$($value.Length)`r`n" $value "`r`n"
        (Invoke-TcpRequest -Connection $client -Message $set -Until "`r`n").Text | Should -Be "+OK`r`n"

        $header = Invoke-TcpRequest -Connection $client -Message "*2`r`n`$3`r`nGET`r`n`$3`r`nbig`r`n" -Until "`r`n"
        $header.Text | Should -Be "`$$($value.Length)`r`n"
        $body = @(Receive-TcpMessage -Connection $client -ByteCount ($value.Length + 2) -Timeout 20)
        $body | Should -HaveCount 1
        Test-SameBytes $body[0].Data (Join-Bytes $value "`r`n") | Should -BeTrue
    }

    It 'reads a 1 MB bulk reply as header and value messages with Line framing and -MaxMessageLength 2MB' {
        $value = [Text.Encoding]::ASCII.GetBytes('v' * 1MB)
        $client = Connect-TcpEndpoint 127.0.0.1 $port -MaxMessageLength 2MB
        $set = Join-Bytes "*3`r`n`$3`r`nSET`r`n`$4`r`ntext`r`n`$$($value.Length)`r`n" $value "`r`n"
        Send-TcpMessage $client $set -Raw
        (Receive-TcpMessage $client -Count 1 -Timeout 10).Text | Should -Be '+OK'
        $reply = @(Invoke-TcpRequest -Connection $client -Message "GET text" -Count 2 -Timeout 20)
        $reply[0].Text | Should -Be "`$$($value.Length)"
        Test-SameBytes $reply[1].Data $value | Should -BeTrue
    }
}

Describe 'memcached' {
    BeforeAll {
        $port = Get-FreeTcpPort
        $arguments = @('-l', '127.0.0.1', '-p', "$port", '-U', '0')
        if ($IsLinux -and (& id -u) -eq '0') { $arguments += @('-u', 'root') }
        $memcached = Start-ServerProcess 'memcached' $arguments $port
    }
    AfterAll {
        Clear-PSTcpState
        Stop-ServerProcess $memcached
    }

    It 'stores and gets back a binary value containing CR LF, byte for byte' {
        $value = Join-Bytes 'a' ([byte[]](0x0D, 0x0A)) 'b' ([byte[]](0x00, 0xFF, 0x80, 0x0D))
        $client = Connect-TcpEndpoint 127.0.0.1 $port -Framing Raw
        $set = Join-Bytes "set k 0 0 $($value.Length)`r`n" $value "`r`n"
        (Invoke-TcpRequest -Connection $client -Message $set -Until "`r`n").Text | Should -Be "STORED`r`n"

        $header = Invoke-TcpRequest -Connection $client -Message "get k`r`n" -Until "`r`n"
        $header.Text | Should -Be "VALUE k 0 $($value.Length)`r`n"
        $data = Receive-TcpMessage -Connection $client -ByteCount ($value.Length + 2) -Timeout 5
        ConvertTo-Hex $data.Data | Should -Be (ConvertTo-Hex (Join-Bytes $value "`r`n"))
        (Receive-TcpMessage -Connection $client -Until "END`r`n" -SimpleMatch -Timeout 5).Text | Should -Be "END`r`n"
    }
}

Describe 'python3 -m http.server --protocol HTTP/1.1' {
    BeforeAll {
        $root = Join-Path ([IO.Path]::GetTempPath()) "pstcp-http-$PID-$([guid]::NewGuid().ToString('N'))"
        $null = New-Item -ItemType Directory $root
        # A body without a final LF, and a 200 KB one full of CR LF.
        [IO.File]::WriteAllBytes((Join-Path $root 'hello.txt'), [Text.Encoding]::ASCII.GetBytes('world'))
        $big = New-BinaryValue 200KB 2
        [IO.File]::WriteAllBytes((Join-Path $root 'big.bin'), $big)
        $port = Get-FreeTcpPort
        $python = Start-ServerProcess 'python3' @('-m', 'http.server', "$port", '--bind', '127.0.0.1', '--protocol', 'HTTP/1.1', '--directory', $root) $port
    }
    AfterAll {
        Clear-PSTcpState
        Stop-ServerProcess $python
        Remove-Item $root -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'serves two keep-alive requests on one Raw connection, bodies exact' {
        $client = Connect-TcpEndpoint 127.0.0.1 $port -Framing Raw
        $bodies = foreach ($path in '/hello.txt', '/big.bin') {
            $head = Invoke-TcpRequest -Connection $client -Message "GET $path HTTP/1.1`r`nHost: 127.0.0.1`r`n`r`n" -Until "`r`n`r`n" -Timeout 10
            $head.Text | Should -Match '^HTTP/1\.[01] 200'
            $head.Text | Should -Match "`r`n`r`n$"
            $length = [int][regex]::Match($head.Text, '(?im)^Content-Length:\s*(\d+)').Groups[1].Value
            , (Receive-TcpMessage -Connection $client -ByteCount $length -Timeout 10).Data
        }
        [Text.Encoding]::ASCII.GetString($bodies[0]) | Should -Be 'world'
        Test-SameBytes $bodies[1] $big | Should -BeTrue
        $client.State | Should -Be 'Open' -Because 'both requests went over one keep-alive connection'
    }
}

# Helpers shared by the PSTcp Pester tests. Raw socket clients and listeners here use
# System.Net.Sockets directly, never PSTcp's own client, so a test of the server does not
# depend on the client under test.

Set-StrictMode -Version 3.0

$script:Utf8 = [System.Text.UTF8Encoding]::new($false)

function ConvertTo-TimeSpan([object] $Value) {
    # Plain numbers mean seconds; [TimeSpan]10 would mean ten ticks.
    if ($Value -is [TimeSpan]) { return $Value }
    if ($Value -is [string] -and $Value -match '^\s*(\d+(\.\d+)?)\s*(ms|s)\s*$') {
        if ($Matches[3] -eq 'ms') { return [TimeSpan]::FromMilliseconds([double]$Matches[1]) }
        return [TimeSpan]::FromSeconds([double]$Matches[1])
    }
    if ($Value -is [string]) { return [TimeSpan]::Parse($Value) }
    [TimeSpan]::FromSeconds([double]$Value)
}

function Wait-Until {
    <#
    .SYNOPSIS
        Polls a condition every few tens of milliseconds until it is true; throws on timeout.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $Condition,
        # A TimeSpan, a number of seconds, or '10s' / '500ms'.
        [object] $Timeout = 10,
        [string] $Because,
        [int] $IntervalMilliseconds = 25
    )
    $limit = ConvertTo-TimeSpan $Timeout
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $ok = $false
        try { $ok = [bool](& $Condition) } catch { $ok = $false; $lastError = $_ }
        if ($ok) { return }
        if ($watch.Elapsed -ge $limit) {
            $what = if ($Because) { $Because } else { "{ $($Condition.ToString().Trim()) }" }
            $detail = if (Get-Variable lastError -ErrorAction Ignore) { " (last error: $lastError)" } else { '' }
            throw "Timed out after $limit waiting for $what$detail"
        }
        Start-Sleep -Milliseconds $IntervalMilliseconds
    }
}

function ConvertTo-Bytes {
    # UTF-8 bytes of a string; escapes are the caller's (use "`r`n" in double quotes).
    param([Parameter(Mandatory, Position = 0)] [AllowEmptyString()] [string] $Text)
    , $script:Utf8.GetBytes($Text)
}

function ConvertFrom-Bytes {
    param([Parameter(Mandatory, Position = 0)] [AllowEmptyCollection()] [byte[]] $Bytes)
    $script:Utf8.GetString($Bytes)
}

function ConvertTo-Hex {
    param([Parameter(Position = 0)] [AllowNull()] [AllowEmptyCollection()] [byte[]] $Bytes)
    if ($null -eq $Bytes) { return '<null>' }
    [System.BitConverter]::ToString($Bytes)
}

function Join-Bytes {
    # Concatenates byte arrays (or strings, taken as UTF-8) into one byte[].
    param([Parameter(Mandatory, ValueFromRemainingArguments)] [object[]] $Parts)
    $stream = [System.IO.MemoryStream]::new()
    foreach ($part in $Parts) {
        if ($part -is [string]) { $bytes = $script:Utf8.GetBytes($part) } else { $bytes = [byte[]]$part }
        $stream.Write($bytes, 0, $bytes.Length)
    }
    , $stream.ToArray()
}

function New-RawClient {
    <#
    .SYNOPSIS
        A connected System.Net.Sockets.Socket (not PSTcp's client).
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [int] $Port,
        [string] $Address = '127.0.0.1',
        [object] $Timeout = 10
    )
    $ip = [System.Net.IPAddress]::Parse($Address)
    $socket = [System.Net.Sockets.Socket]::new($ip.AddressFamily, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
    $socket.NoDelay = $true
    $task = $socket.ConnectAsync($ip, $Port)
    if (-not $task.Wait([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)) {
        $socket.Dispose()
        throw "Raw connect to ${Address}:$Port timed out"
    }
    $socket
}

function Send-RawBytes {
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket,
        [Parameter(Mandatory, Position = 1)] [object] $Data
    )
    if ($Data -is [string]) { $bytes = $script:Utf8.GetBytes($Data) } else { $bytes = [byte[]]$Data }
    $sent = 0
    while ($sent -lt $bytes.Length) {
        $sent += $Socket.Send($bytes, $sent, $bytes.Length - $sent, [System.Net.Sockets.SocketFlags]::None)
    }
}

function Read-RawBytes {
    <#
    .SYNOPSIS
        Reads exactly Count bytes; throws on timeout or on EOF before Count.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket,
        [Parameter(Mandatory, Position = 1)] [int] $Count,
        [object] $Timeout = 10
    )
    $buffer = [byte[]]::new($Count)
    $read = 0
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $limit = ConvertTo-TimeSpan $Timeout
    while ($read -lt $Count) {
        if ($watch.Elapsed -ge $limit) {
            throw "Read-RawBytes: timed out after $limit with $read of $Count bytes"
        }
        if (-not $Socket.Poll(50000, [System.Net.Sockets.SelectMode]::SelectRead)) { continue }
        $n = $Socket.Receive($buffer, $read, $Count - $read, [System.Net.Sockets.SocketFlags]::None)
        if ($n -eq 0) { throw "Read-RawBytes: EOF after $read of $Count bytes" }
        $read += $n
    }
    , $buffer
}

function Read-RawToEnd {
    <#
    .SYNOPSIS
        Reads until the peer closes (EOF); throws on timeout. A reset ends the read too.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket,
        [object] $Timeout = 10
    )
    $stream = [System.IO.MemoryStream]::new()
    $buffer = [byte[]]::new(65536)
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $limit = ConvertTo-TimeSpan $Timeout
    while ($true) {
        if ($watch.Elapsed -ge $limit) {
            throw "Read-RawToEnd: no EOF after $limit ($($stream.Length) bytes read)"
        }
        if (-not $Socket.Poll(50000, [System.Net.Sockets.SelectMode]::SelectRead)) { continue }
        $n = $Socket.Receive($buffer, 0, $buffer.Length, [System.Net.Sockets.SocketFlags]::None)
        if ($n -eq 0) { break }
        $stream.Write($buffer, 0, $n)
    }
    , $stream.ToArray()
}

function Read-RawAvailable {
    <#
    .SYNOPSIS
        Collects whatever arrives within a short window (for asserting that something did
        NOT arrive); returns the bytes, possibly none. Stops early at EOF or at MaxBytes.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket,
        [object] $Window = '500ms',
        [int] $MaxBytes = [int]::MaxValue
    )
    $stream = [System.IO.MemoryStream]::new()
    $buffer = [byte[]]::new(65536)
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $limit = ConvertTo-TimeSpan $Window
    while ($watch.Elapsed -lt $limit -and $stream.Length -lt $MaxBytes) {
        if (-not $Socket.Poll(20000, [System.Net.Sockets.SelectMode]::SelectRead)) { continue }
        $n = $Socket.Receive($buffer, 0, $buffer.Length, [System.Net.Sockets.SocketFlags]::None)
        if ($n -eq 0) { break }
        $stream.Write($buffer, 0, $n)
    }
    , $stream.ToArray()
}

function Close-RawSend {
    # Half-close: FIN to the peer, the read side stays open.
    param([Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket)
    $Socket.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
}

function Reset-RawClient {
    # Abortive close: RST instead of FIN.
    param([Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket)
    $Socket.LingerState = [System.Net.Sockets.LingerOption]::new($true, 0)
    $Socket.Close()
}

function Close-RawClient {
    param([Parameter(Position = 0)] [AllowNull()] [object[]] $Socket)
    foreach ($s in $Socket) {
        if ($null -ne $s) { try { $s.Dispose() } catch { } }
    }
}

function New-RawListener {
    # A started System.Net.Sockets.TcpListener on loopback with a free port.
    param([string] $Address = '127.0.0.1', [int] $Port = 0)
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Parse($Address), $Port)
    $listener.Start()
    $listener
}

function Receive-RawConnection {
    # Accepts one connection from a raw listener, with a timeout; returns its Socket.
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.TcpListener] $Listener,
        [object] $Timeout = 10
    )
    $task = $Listener.AcceptSocketAsync()
    if (-not $task.Wait([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)) {
        throw 'Receive-RawConnection: no connection arrived'
    }
    $task.Result
}

function Get-FreeTcpPort {
    # A port that was free a moment ago (bound, then released).
    param([string] $Address = '127.0.0.1')
    $listener = New-RawListener -Address $Address
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

function Test-PortBindable {
    # True when a fresh listener can bind the port now.
    param([Parameter(Mandatory, Position = 0)] [int] $Port, [string] $Address = '127.0.0.1')
    try {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Parse($Address), $Port)
        $listener.Start()
        $listener.Stop()
        $true
    } catch {
        $false
    }
}

function New-BlackholeEndpoint {
    <#
    .SYNOPSIS
        A loopback listener with backlog 1 that never accepts, its queue filled with extra
        connections, so a further connect gets no answer (SYNs are dropped).
        Returns @{ Port; Listener; Fillers }; dispose with Remove-BlackholeEndpoint.
    #>
    $listener = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
    $listener.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
    $listener.Listen(1)
    $port = $listener.LocalEndPoint.Port
    $fillers = [System.Collections.Generic.List[object]]::new()
    $full = $false
    for ($i = 0; $i -lt 16 -and -not $full; $i++) {
        $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $fillers.Add($s)
        $task = $s.ConnectAsync([System.Net.IPAddress]::Loopback, $port)
        # A connect still pending after a while means the backlog is full.
        if (-not $task.Wait(300)) { $full = $true }
    }
    [pscustomobject]@{ Port = $port; Listener = $listener; Fillers = $fillers; Full = $full }
}

function Remove-BlackholeEndpoint {
    param([Parameter(Position = 0)] [AllowNull()] $Endpoint)
    if ($null -eq $Endpoint) { return }
    foreach ($s in $Endpoint.Fillers) { try { $s.Dispose() } catch { } }
    try { $Endpoint.Listener.Dispose() } catch { }
}

function Invoke-Captured {
    <#
    .SYNOPSIS
        Runs a script block; returns its output, every error record (non-terminating and
        terminating) and the elapsed time, without throwing.
    #>
    param([Parameter(Mandatory, Position = 0)] [scriptblock] $ScriptBlock)
    $output = [System.Collections.Generic.List[object]]::new()
    $errors = [System.Collections.Generic.List[System.Management.Automation.ErrorRecord]]::new()
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try {
        & $ScriptBlock 2>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { $errors.Add($_) } else { $output.Add($_) }
        }
    } catch {
        $errors.Add($_)
    }
    $watch.Stop()
    [pscustomobject]@{ Output = $output.ToArray(); Errors = $errors.ToArray(); Elapsed = $watch.Elapsed }
}

function Start-BackgroundScript {
    <#
    .SYNOPSIS
        Runs a script block in its own runspace on another thread ([PowerShell] instance).
        Returns a handle for Wait-BackgroundScript. The script gets -ArgumentList.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [scriptblock] $ScriptBlock,
        [object[]] $ArgumentList = @()
    )
    $ps = [PowerShell]::Create()
    $null = $ps.AddScript($ScriptBlock.ToString())
    foreach ($a in $ArgumentList) { $null = $ps.AddArgument($a) }
    # Output goes to a collection the test can watch while the script runs.
    $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
    $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]$null, $output)
    [pscustomobject]@{ PowerShell = $ps; Async = $async; Output = $output }
}

function Wait-BackgroundScript {
    <#
    .SYNOPSIS
        Waits for a background script; returns its output. On timeout it stops the script
        and throws. Always disposes the instance.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] $Handle,
        [object] $Timeout = 15
    )
    $ps = $Handle.PowerShell
    try {
        if (-not $Handle.Async.AsyncWaitHandle.WaitOne([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)) {
            $null = $ps.BeginStop($null, $null)
            throw "background script did not finish within $Timeout"
        }
        $null = $ps.EndInvoke($Handle.Async)
        foreach ($e in $ps.Streams.Error) { Write-Warning "background script error: $e" }
        , @($Handle.Output.ReadAll())
    } finally {
        if ($Handle.Async.IsCompleted) { $ps.Dispose() }
    }
}

function Stop-BackgroundScript {
    # Best-effort cleanup for AfterEach.
    param([Parameter(Position = 0)] [AllowNull()] $Handle)
    if ($null -eq $Handle) { return }
    try {
        if (-not $Handle.Async.IsCompleted) {
            $stop = $Handle.PowerShell.BeginStop($null, $null)
            $null = $stop.AsyncWaitHandle.WaitOne(5000)
        }
        if ($Handle.Async.IsCompleted) { $Handle.PowerShell.Dispose() }
    } catch { }
}

function Get-PwshLaunch {
    <#
    .SYNOPSIS
        How to start a child pwsh like this one: FileName plus leading arguments. Under
        `dotnet pwsh` the process is dotnet and pwsh.dll must be passed to it.
    #>
    $processPath = [System.Environment]::ProcessPath
    $name = [System.IO.Path]::GetFileNameWithoutExtension($processPath)
    if ($name -eq 'dotnet') {
        [pscustomobject]@{ FileName = $processPath; Arguments = @((Join-Path $PSHOME 'pwsh.dll')) }
    } else {
        [pscustomobject]@{ FileName = $processPath; Arguments = @() }
    }
}

function Invoke-ChildPwsh {
    <#
    .SYNOPSIS
        Runs a child pwsh with the given arguments (after -NoProfile -NonInteractive), optional
        standard input, and a timeout. Returns ExitCode, StdOut, StdErr, TimedOut, Elapsed.
    #>
    param(
        [Parameter(Mandatory)] [string[]] $ArgumentList,
        [string] $StandardInput,
        [object] $Timeout = 60,
        [string] $WorkingDirectory = (Get-Location).ProviderPath,
        [switch] $Interactive
    )
    $launch = Get-PwshLaunch
    $info = [System.Diagnostics.ProcessStartInfo]::new($launch.FileName)
    foreach ($a in $launch.Arguments) { $info.ArgumentList.Add($a) }
    $info.ArgumentList.Add('-NoProfile')
    if (-not $Interactive) { $info.ArgumentList.Add('-NonInteractive') }
    foreach ($a in $ArgumentList) { $info.ArgumentList.Add($a) }
    $info.UseShellExecute = $false
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.WorkingDirectory = $WorkingDirectory
    $info.Environment['NO_COLOR'] = '1'
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $process = [System.Diagnostics.Process]::Start($info)
    try {
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if ($PSBoundParameters.ContainsKey('StandardInput')) {
            $process.StandardInput.Write($StandardInput)
        }
        $process.StandardInput.Close()
        $timedOut = -not $process.WaitForExit([int](ConvertTo-TimeSpan $Timeout).TotalMilliseconds)
        if ($timedOut) {
            try { $process.Kill($true) } catch { }
            $null = $process.WaitForExit(5000)
        } else {
            $process.WaitForExit()
        }
        $null = $stdout.Wait(5000); $null = $stderr.Wait(5000)
        [pscustomobject]@{
            ExitCode = if ($timedOut) { $null } else { $process.ExitCode }
            StdOut   = if ($stdout.IsCompleted) { $stdout.Result } else { '' }
            StdErr   = if ($stderr.IsCompleted) { $stderr.Result } else { '' }
            TimedOut = $timedOut
            Elapsed  = $watch.Elapsed
        }
    } finally {
        $process.Dispose()
    }
}

function Get-TypeNames {
    param([Parameter(Mandatory, Position = 0)] $InputObject)
    $InputObject.PSObject.TypeNames
}

function Clear-PSTcpState {
    <#
    .SYNOPSIS
        Best-effort teardown for AfterEach/AfterAll: removes consumer jobs, closes client
        connections and stops servers of this process. Never throws.
    #>
    param([switch] $KeepJobs)
    if (-not $KeepJobs) {
        try { Get-Job | Where-Object PSJobTypeName -eq 'TcpConsumerJob' | Remove-Job -Force -ErrorAction SilentlyContinue } catch { }
    }
    # Closed ones too: a connection the peer closed stays listed until disconnected.
    try { Get-TcpConnection -ErrorAction SilentlyContinue | Disconnect-TcpEndpoint -Timeout 1 -WarningAction SilentlyContinue -ErrorAction SilentlyContinue } catch { }
    try { Get-TcpServer -ErrorAction SilentlyContinue | Where-Object State -eq 'Running' | Stop-TcpServer -Confirm:$false -ErrorAction SilentlyContinue } catch { }
}

Export-ModuleMember -Function *-*

# ---- Added for the limits, faults, server, TLS, IPv6 and ncat-parity tests ----

function Test-RawClosed {
    <#
    .SYNOPSIS
        Reads and discards until the peer closes the connection (EOF or reset); returns $true
        then, or $false if it is still open after Timeout.
    #>
    param(
        [Parameter(Mandatory, Position = 0)] [System.Net.Sockets.Socket] $Socket,
        [object] $Timeout = 10
    )
    $buffer = [byte[]]::new(65536)
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    $limit = ConvertTo-TimeSpan $Timeout
    while ($watch.Elapsed -lt $limit) {
        try {
            if (-not $Socket.Poll(20000, [System.Net.Sockets.SelectMode]::SelectRead)) { continue }
            if ($Socket.Receive($buffer, 0, $buffer.Length, [System.Net.Sockets.SocketFlags]::None) -eq 0) { return $true }
        } catch [System.Net.Sockets.SocketException] {
            return $true
        } catch [System.ObjectDisposedException] {
            return $true
        }
    }
    $false
}

function Test-IPv6Loopback {
    # True when a listener can bind ::1 here (some containers have no IPv6 loopback).
    try {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::IPv6Loopback, 0)
        $probe.Start()
        $probe.Stop()
        $true
    } catch {
        $false
    }
}

function Test-DualStack {
    # True when a listener on :: with IPv6Only off accepts an IPv4 loopback client.
    if (-not (Test-IPv6Loopback)) { return $false }
    $listener = $null; $client = $null
    try {
        $listener = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetworkV6, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $listener.DualMode = $true
        $listener.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::IPv6Any, 0))
        $listener.Listen(4)
        $client = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork, [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
        $client.ConnectAsync([System.Net.IPAddress]::Loopback, $listener.LocalEndPoint.Port).Wait(3000)
    } catch {
        $false
    } finally {
        if ($client) { $client.Dispose() }
        if ($listener) { $listener.Dispose() }
    }
}

function New-TestCertificate {
    <#
    .SYNOPSIS
        A self-signed RSA 2048 certificate for CN=localhost with a SAN of localhost, with its
        private key (re-imported from PFX so SslStream can use the key on every platform).
        -NoPrivateKey returns the public part only.
    #>
    param([string] $Subject = 'localhost', [switch] $NoPrivateKey)
    $rsa = [System.Security.Cryptography.RSA]::Create(2048)
    try {
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new(
            "CN=$Subject", $rsa, [System.Security.Cryptography.HashAlgorithmName]::SHA256,
            [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $san = [System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder]::new()
        $san.AddDnsName($Subject)
        $request.CertificateExtensions.Add($san.Build())
        $usage = [System.Security.Cryptography.OidCollection]::new()
        $null = $usage.Add([System.Security.Cryptography.Oid]::new('1.3.6.1.5.5.7.3.1'))   # server authentication
        $request.CertificateExtensions.Add([System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]::new($usage, $false))
        $now = [DateTimeOffset]::UtcNow
        $cert = $request.CreateSelfSigned($now.AddMinutes(-5), $now.AddDays(1))
        if ($NoPrivateKey) {
            return [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Cert))
        }
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($cert.Export([System.Security.Cryptography.X509Certificates.X509ContentType]::Pfx))
    } finally {
        $rsa.Dispose()
    }
}

function Get-BackgroundOutput {
    <#
    .SYNOPSIS
        A snapshot of what a Start-BackgroundScript handle has output so far, without waiting.
        (Enumerating its PSDataCollection directly blocks until the script ends.)
    #>
    param([Parameter(Mandatory, Position = 0)] $Handle)
    $items = [System.Collections.Generic.List[object]]::new()
    $count = $Handle.Output.Count
    for ($i = 0; $i -lt $count; $i++) { $items.Add($Handle.Output[$i]) }
    , $items.ToArray()
}

Export-ModuleMember -Function *-*

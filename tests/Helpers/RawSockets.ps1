# Raw System.Net.Sockets clients and listeners (never PSTcp's own client, so a test of the
# server does not depend on the client under test), free ports, and address-family probes.

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

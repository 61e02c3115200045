# The servers Invoke-Benchmark.ps1 measures, and the load generator run against them.
# Dot-source after BenchTools.ps1.

# A running server: its process, its port, and for a PSTcp host (bench/ServerHost.ps1) a way
# to send it commands. Returns a string (the reason) instead when the server says it cannot
# run in this build ("SKIP ..."), so that the caller skips it with that message.
function Start-BenchServer([hashtable] $Spec, [hashtable] $Values = @{}) {
    $arguments = @($Spec.Arguments | ForEach-Object {
        $a = $_
        foreach ($k in $Values.Keys) { $a = $a.Replace("{$k}", "$($Values[$k])") }
        $a
    })
    $p = Start-Child $Spec.FileName $arguments
    $stderr = $p.StandardError.ReadToEndAsync()
    $srv = [pscustomobject]@{ Name = $Spec.Name; Process = $p; Port = 0; Stdout = $null; Stderr = $stderr
                              Control = [bool]$Spec['Control']; Pending = $null }
    if ($Spec['FixedPort']) {
        # A server that prints nothing (socat): ready once it accepts a connection.
        $srv.Port = $Values.port
        $deadline = [DateTime]::UtcNow.AddSeconds($Spec.StartTimeoutSeconds)
        while ([DateTime]::UtcNow -lt $deadline -and -not $p.HasExited) {
            $c = [Net.Sockets.TcpClient]::new()
            try { $c.Connect('127.0.0.1', $srv.Port); return $srv } catch { Start-Sleep -Milliseconds 20 } finally { $c.Dispose() }
        }
        Stop-Child $p 0
        throw "$($Spec.Name) did not accept connections on port $($srv.Port) within $($Spec.StartTimeoutSeconds)s: $(if ($stderr.Wait(1000)) { $stderr.Result })"
    }
    # The port is the first line that is a number (a module may print a warning before it).
    $deadline = [DateTime]::UtcNow.AddSeconds($Spec.StartTimeoutSeconds)
    $seen = [Collections.Generic.List[string]]::new()
    for ($i = 0; $i -lt 200; $i++) {
        $left = [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($left -le 0) { break }
        $line = $p.StandardOutput.ReadLineAsync()
        if (-not $line.Wait($left) -or $null -eq $line.Result) { break }
        $text = $line.Result.Trim()
        if ($text.StartsWith('SKIP ')) { Stop-Child $p; return $text.Substring(5) }
        $port = 0
        if ([int]::TryParse($text, [ref] $port) -and $port -gt 0) {
            $srv.Port = $port
            # A PSTcp host answers commands on stdout; the others' output is drained.
            if (-not $srv.Control) { $srv.Stdout = $p.StandardOutput.ReadToEndAsync() }
            return $srv
        }
        $seen.Add($line.Result)
    }
    Stop-Child $p 0
    $errText = if ($stderr.Wait(2000)) { $stderr.Result } else { '' }
    throw "$($Spec.Name) did not report its port within $($Spec.StartTimeoutSeconds)s. stdout: $($seen -join ' | ') stderr: $errText"
}

# Sends one command to a PSTcp host and returns its answer line that starts with $Verb.
function Invoke-ServerCommand($Server, [string] $Command, [int] $TimeoutSeconds = 60) {
    $verb = ($Command -split ' ')[0]
    $Server.Process.StandardInput.WriteLine($Command)
    $Server.Process.StandardInput.Flush()
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        # A read that timed out is still pending: wait for that one rather than start another.
        if (-not $Server.Pending) { $Server.Pending = $Server.Process.StandardOutput.ReadLineAsync() }
        $left = [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds
        if ($left -le 0 -or -not $Server.Pending.Wait($left)) { throw "$($Server.Name) did not answer '$Command' within $TimeoutSeconds s" }
        $line = $Server.Pending.Result
        $Server.Pending = $null
        if ($null -eq $line) { throw "$($Server.Name) ended while answering '$Command'" }
        if ($line.StartsWith("$verb ")) { return $line.Substring($verb.Length + 1) }
        if ($line.StartsWith('error ')) { throw "$($Server.Name): $line" }
    }
}

# Runs the generator to completion (bounded). With --phases it stops at each measuring point
# ("PHASE name arg" on its stdout) and waits for one line on stdin: $OnPhase answers it.
function Invoke-Generator([string[]] $ArgumentList, [int] $TimeoutSeconds, [scriptblock] $OnPhase, [string] $FileName = 'dotnet') {
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $p = Start-Child $FileName $ArgumentList
    try {
        $err = $p.StandardError.ReadToEndAsync()
        $out = [Text.StringBuilder]::new()
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
        $timedOut = $false
        while ($true) {
            $left = [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds
            $read = $p.StandardOutput.ReadLineAsync()
            if ($left -le 0 -or -not $read.Wait([Math]::Max(0, $left))) { $timedOut = $true; break }
            $line = $read.Result
            if ($null -eq $line) { break }
            if ($line.StartsWith('PHASE ')) {
                $name, $arg = $line.Substring(6) -split ' ', 2
                $reply = if ($OnPhase) { & $OnPhase $name $arg } else { '-' }
                $p.StandardInput.WriteLine("$reply")
                $p.StandardInput.Flush()
            } else {
                $null = $out.AppendLine($line)
            }
        }
        if ($timedOut) { $p.Kill($true) }
        $null = $p.WaitForExit(5000)
        $null = $err.Wait(5000)
        [pscustomobject]@{
            ExitCode = if ($timedOut -or -not $p.HasExited) { -1 } else { $p.ExitCode }
            TimedOut = $timedOut
            Ms       = $sw.Elapsed.TotalMilliseconds
            Stdout   = $out.ToString()
            Stderr   = if ($err.IsCompletedSuccessfully) { $err.Result } else { '' }
        }
    } finally { Stop-Child $p 0 }
}

# A free loopback port for a server that cannot pick its own (socat). Racy by nature; the
# caller's readiness check catches the rare collision.
function Get-FreePort {
    $l = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $l.Start()
    try { $l.LocalEndpoint.Port } finally { $l.Stop() }
}

function Invoke-DotnetBuild([string] $Project) {
    $r = Invoke-Child 'dotnet' @('build', $Project, '-c', 'Release', '--nologo', '-v', 'quiet', '-clp:NoSummary') 300
    if ($r.ExitCode -ne 0) { throw "dotnet build $Project failed:`n$($r.Stdout)`n$($r.Stderr)" }
}

# Every server the benchmark knows, by name, with the reason for any that cannot run here.
function Get-BenchServers([string] $BenchDir, [string] $ModulePath, [hashtable] $Skipped) {
    $servers = [ordered]@{}
    $manifest = Join-Path $ModulePath 'PSTcp.psd1'
    if (Test-Path $manifest) {
        # Run from a snapshot, so a rebuild of out/PSTcp during the benchmark cannot break it.
        $snapshot = Join-Path ([IO.Path]::GetTempPath()) "pstcp-bench-module-$PID/PSTcp"
        if (Test-Path $snapshot) { Remove-Item $snapshot -Recurse -Force }
        $null = New-Item -ItemType Directory -Force $snapshot
        Copy-Item (Join-Path $ModulePath '*') $snapshot -Recurse
        $pwsh = @(Get-PwshCommand)
        $hostArgs = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-File',
            (Join-Path $BenchDir 'ServerHost.ps1'), '-ModulePath', (Join-Path $snapshot 'PSTcp.psd1'))
        $pstcp = @{
            PSTcp          = @()                                             # as users run it: every line also queued
            PSTcpNoQueue   = @('-NoQueue')                                   # the echo alone, what the peers do
            PSTcpLP        = @('-Framing', 'LengthPrefix')
            PSTcpNoQueueLP = @('-Framing', 'LengthPrefix', '-NoQueue')
            Relay          = @('-Kind', 'Relay', '-TargetPort', '{target}')
            RelayNoQueue   = @('-Kind', 'Relay', '-TargetPort', '{target}', '-NoQueue')
        }
        foreach ($name in $pstcp.Keys) {
            $servers[$name] = @{ Name = $name; FileName = $pwsh[0]; Arguments = $hostArgs + $pstcp[$name]
                                 StartTimeoutSeconds = 60; Control = $true; NeedsTarget = $name -like 'Relay*' }
        }
    } else {
        $Skipped['PSTcp'] = "module not found at $manifest (build it with ./build.ps1); benchmarking the peers only"
    }
    $go = Get-Command go -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $go) {
        $Skipped['Go'] = "'go' is not on PATH (e.g. apt-get install golang-go); skipping the Go peer and the relay scenarios"
    } else {
        $goDir = Join-Path $BenchDir 'peers/go-echo'
        $goBin = Join-Path $goDir 'bin/go-echo'
        $r = Invoke-Child $go.Source @('build', '-o', $goBin, '.') 300 $goDir
        if ($r.ExitCode -ne 0) {
            $Skipped['Go'] = "go build failed, skipping the Go peer: $($r.Stderr.Trim())"
        } else {
            $servers['Go'] = @{ Name = 'Go'; FileName = $goBin; StartTimeoutSeconds = 15
                               Arguments = @('-addr', '127.0.0.1:0', '-exit-on-stdin-eof') }
        }
    }
    Invoke-DotnetBuild (Join-Path $BenchDir 'peers/PipelinesEcho/PipelinesEcho.csproj')
    $servers['Pipelines'] = @{ Name = 'Pipelines'; FileName = 'dotnet'; StartTimeoutSeconds = 15
                              Arguments = @((Join-Path $BenchDir 'peers/PipelinesEcho/bin/Release/net10.0/PipelinesEcho.dll'),
                                            '--port', '0', '--exit-on-stdin-eof') }
    $socat = Get-Command socat -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($socat) {
        # socat forks a process per connection: its CPU is not comparable, so none is read.
        $servers['socat'] = @{ Name = 'socat'; FileName = $socat.Source; StartTimeoutSeconds = 15; FixedPort = $true
                               NeedsTarget = $true; NoPid = $true
                               Arguments = @('TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr', 'TCP:127.0.0.1:{target}') }
    } else {
        $Skipped['socat'] = "'socat' is not on PATH (apt-get install socat); the relay scenarios have no peer"
    }
    $servers
}

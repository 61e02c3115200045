# Real programs started by a test on loopback (openssl, microsocks, tinyproxy, redis-server), and
# a throwaway PKI made with openssl.

function Start-TestProgram {
    <#
    .SYNOPSIS
        Starts a program with its output drained and waits until -Ready is true (by default: its
        -Port accepts a connection, or its -UnixSocket file exists); kills it if that never happens.
    #>
    param(
        [Parameter(Mandatory)] [string] $FileName,
        [string[]] $Arguments = @(),
        [int] $Port,
        [string] $UnixSocket,
        [scriptblock] $Ready,
        [switch] $RedirectInput
    )
    # Output goes to a file (through sh's exec, which leaves the program itself as the process):
    # nothing to drain, and the test reads it with Get-Content.
    $log = Join-Path ([System.IO.Path]::GetTempPath()) "pstcp-$([System.IO.Path]::GetFileName($FileName))-$([guid]::NewGuid().ToString('N')).log"
    $info = [System.Diagnostics.ProcessStartInfo]::new('sh')
    foreach ($a in @('-c', 'exec "$0" "$@" > "$PSTCP_PROGRAM_LOG" 2>&1', $FileName) + $Arguments) { $info.ArgumentList.Add($a) }
    $info.Environment['PSTCP_PROGRAM_LOG'] = $log
    $info.UseShellExecute = $false
    $info.RedirectStandardInput = [bool] $RedirectInput
    $process = [System.Diagnostics.Process]::Start($info)
    $output = $log
    $check = if ($Ready) { $Ready }
    elseif ($UnixSocket) { { Test-Path -LiteralPath $UnixSocket }.GetNewClosure() }
    elseif ($Port) { { $probe = New-RawClient $Port -Timeout 1; $probe.Dispose(); $true }.GetNewClosure() }
    try {
        if ($check) {
            Wait-Until {
                if ($process.HasExited) { throw "$FileName exited with code $($process.ExitCode): $(Get-Content -LiteralPath $log -Raw -ErrorAction SilentlyContinue)" }
                & $check
            } -Timeout 15 -Because "$FileName is ready"
        }
    } catch {
        Stop-TestProgram ([pscustomobject]@{ Process = $process; Log = $log })
        throw
    }
    [pscustomobject]@{ Process = $process; Log = $log }
}

function Get-TestProgramOutput($Program) {
    # The lines the program wrote so far (stdout and stderr).
    @(Get-Content -LiteralPath $Program.Log -ErrorAction SilentlyContinue)
}

function Stop-TestProgram($Program) {
    if ($null -eq $Program) { return }
    $p = $Program.Process
    try { if (-not $p.HasExited) { $p.Kill() } } catch { }
    $null = $p.WaitForExit(5000)
    $p.Dispose()
    Remove-Item -LiteralPath $Program.Log -ErrorAction SilentlyContinue
}

function New-TestPki {
    <#
    .SYNOPSIS
        A CA, a server certificate (CN and SAN localhost, 127.0.0.1) and a client certificate it
        issued, plus an unrelated self-signed CA, as PEM files in -Directory (openssl, EC keys: fast).
    #>
    param([Parameter(Mandatory)] [string] $Directory)
    $null = New-Item -ItemType Directory -Force -Path $Directory
    $run = {
        param([string[]] $Arguments)
        $out = & openssl @Arguments 2>&1
        if ($LASTEXITCODE -ne 0) { throw "openssl $($Arguments -join ' ') failed: $out" }
    }
    $p = { param($name) Join-Path $Directory $name }
    $ec = @('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes')
    & $run (@('req', '-x509') + $ec + @('-keyout', (& $p 'ca.key'), '-out', (& $p 'ca.pem'), '-days', '2', '-subj', '/CN=PSTcp Test CA'))
    & $run (@('req', '-x509') + $ec + @('-keyout', (& $p 'other-ca.key'), '-out', (& $p 'other-ca.pem'), '-days', '2', '-subj', '/CN=PSTcp Other CA'))
    Set-Content -LiteralPath (& $p 'server.ext') -Value 'subjectAltName=DNS:localhost,IP:127.0.0.1'
    foreach ($who in @(@{ Name = 'server'; Subject = '/CN=localhost'; Ca = 'ca'; Ext = $true }, @{ Name = 'client'; Subject = '/CN=pstcp-client'; Ca = 'ca'; Ext = $false },
            @{ Name = 'stranger'; Subject = '/CN=pstcp-stranger'; Ca = 'other-ca'; Ext = $false })) {
        & $run (@('req') + $ec + @('-keyout', (& $p "$($who.Name).key"), '-out', (& $p "$($who.Name).csr"), '-subj', $who.Subject))
        $sign = @('x509', '-req', '-in', (& $p "$($who.Name).csr"), '-CA', (& $p "$($who.Ca).pem"), '-CAkey', (& $p "$($who.Ca).key"),
            '-CAcreateserial', '-out', (& $p "$($who.Name).pem"), '-days', '2')
        if ($who.Ext) { $sign += @('-extfile', (& $p 'server.ext')) }
        & $run $sign
    }
    [pscustomobject]@{
        Directory = $Directory
        CaPem = & $p 'ca.pem'; OtherCaPem = & $p 'other-ca.pem'
        ServerPem = & $p 'server.pem'; ServerKey = & $p 'server.key'
        ClientPem = & $p 'client.pem'; ClientKey = & $p 'client.key'
        StrangerPem = & $p 'stranger.pem'; StrangerKey = & $p 'stranger.key'
    }
}

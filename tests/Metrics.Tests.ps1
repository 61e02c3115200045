# The PSTcp meter as PowerShell sees it: a MeterListener (the API dotnet-counters and
# OpenTelemetry use) loaded in this session reads the same counts the server objects show.
BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    # The listener's callbacks run on socket threads, where a script block can't: a small C#
    # recorder sums the measurements instead, per instrument and server (or connection) name.
    if (-not ('PSTcpMetricsRecorder' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Metrics;

public sealed class PSTcpMetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new MeterListener();
    private readonly ConcurrentDictionary<string, double> _sums = new ConcurrentDictionary<string, double>();
    public readonly ConcurrentDictionary<string, bool> Instruments = new ConcurrentDictionary<string, bool>();

    public PSTcpMetricsRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name != "PSTcp") return;
            Instruments[instrument.Name] = true;
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, value, tags, state) => Add(i, value, tags));
        _listener.SetMeasurementEventCallback<double>((i, value, tags, state) => Add(i, value, tags));
        _listener.Start();
    }

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object>> tags)
    {
        string name = "";
        foreach (var tag in tags)
        {
            if (tag.Key == "pstcp.server.name" || tag.Key == "pstcp.connection.name") name = tag.Value as string;
        }
        _sums.AddOrUpdate(instrument.Name + "|" + name, value, (_, sum) => sum + value);
    }

    public double Sum(string instrument, string name)
    {
        double sum;
        return _sums.TryGetValue(instrument + "|" + name, out sum) ? sum : 0;
    }

    public void Observe() { _listener.RecordObservableInstruments(); }

    public void Dispose() { _listener.Dispose(); }
}
'@
    }
}

Describe 'The PSTcp meter' {
    BeforeAll { $script:Recorder = [PSTcpMetricsRecorder]::new() }
    AfterAll { $script:Recorder.Dispose() }
    AfterEach { Clear-PSTcpState }

    It 'publishes the instruments SPEC names, from the runtime''s own System.Diagnostics.Metrics' {
        # The meter comes to life with the first server or connection.
        $null = Start-TcpEchoServer -Port 0
        $names = @($script:Recorder.Instruments.Keys)
        foreach ($name in 'pstcp.connections.active', 'pstcp.connections', 'pstcp.connections.rejected', 'pstcp.connection.duration',
            'pstcp.messages.received', 'pstcp.messages.sent', 'pstcp.bytes.received', 'pstcp.bytes.sent', 'pstcp.queue.dropped',
            'pstcp.handler.failures', 'pstcp.tls.handshakes.active', 'pstcp.queue.length') {
            $names | Should -Contain $name
        }
        # The module ships a netstandard2.0 copy for Windows PowerShell; PowerShell 7 loads its runtime's.
        [System.Diagnostics.Metrics.Meter].Assembly.Location | Should -Not -BeLike "*$([System.IO.Path]::DirectorySeparatorChar)PSTcp$([System.IO.Path]::DirectorySeparatorChar)*"
    }

    It 'counts connections, messages and bytes as the server does' {
        $name = "meter-$([guid]::NewGuid().ToString('N'))"
        $server = Start-TcpEchoServer -Port 0 -Name $name
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        1..1000 | Send-TcpLine $client
        Wait-Until { $client.MessagesReceived -eq 1000 } -Timeout 20
        $client | Disconnect-TcpEndpoint
        Wait-Until { $server.ConnectionCount -eq 0 -and $script:Recorder.Sum('pstcp.connection.duration', $name) -gt 0 } -Timeout 20
        $r = $script:Recorder
        $r.Sum('pstcp.connections', $name) | Should -Be $server.TotalConnections
        $r.Sum('pstcp.connections.active', $name) | Should -Be 0
        $r.Sum('pstcp.messages.received', $name) | Should -Be $server.MessagesReceived
        $r.Sum('pstcp.bytes.received', $name) | Should -Be $server.BytesReceived
        $r.Sum('pstcp.messages.sent', $name) | Should -Be 1000
        $r.Sum('pstcp.bytes.sent', $name) | Should -Be $server.BytesReceived
        $r.Observe()
        $r.Sum('pstcp.queue.length', $name) | Should -Be $server.QueueLength
        $server.QueueLength | Should -Be 1000
    }

    It 'counts handler failures by server' {
        $name = "failing-$([guid]::NewGuid().ToString('N'))"
        $server = Start-TcpServer -Port 0 -Name $name -ScriptBlock { throw 'boom' } -WarningAction SilentlyContinue
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        'a', 'b' | Send-TcpLine $client
        Wait-Until { $script:Recorder.Sum('pstcp.handler.failures', $name) -eq 2 } -Timeout 20
        $server.ErrorCount | Should -BeGreaterOrEqual 2
    }
}

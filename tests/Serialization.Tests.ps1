# PSTcp's objects after a trip through another process (Start-Job serializes them to CliXml).

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:modulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").Path

    # One job in another process: a server, a client, one line; it returns the message, the
    # server (still running, with its counters) and the client connection.
    $job = Start-Job -ScriptBlock {
        param($ModulePath)
        Import-Module $ModulePath
        $server = Start-TcpEchoServer -Port 0 -Name SerialSrv
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        'hello', 'world' | Send-TcpLine -Connection $client
        $messages = Receive-TcpMessage -Server $server -Count 2 -Timeout '00:00:10'
        $null = Receive-TcpMessage -Connection $client -Count 2 -Timeout '00:00:10'
        $messages[1]
        $server
        $client
        $client.LocalEndPoint.Port
        $client | Disconnect-TcpEndpoint
        $server | Stop-TcpServer
    } -ArgumentList $script:modulePath
    $finished = Wait-Job $job -Timeout 60
    $script:results = @{}
    if ($finished) {
        # Each object as such (a wrapper would serialize it one level deeper, not as itself).
        foreach ($item in (Receive-Job $job -ErrorVariable script:jobErrors)) {
            $kind = switch ($item.PSObject.TypeNames[0]) {
                'Deserialized.PSTcp.TcpMessage' { 'message' }
                'Deserialized.PSTcp.TcpServer' { 'server' }
                'Deserialized.PSTcp.TcpConnection' { 'client' }
                default { 'clientPort' }
            }
            $script:results[$kind] = $item
        }
    }
    Remove-Job $job -Force
}

Describe 'Serialization of PSTcp objects' {
    It 'runs the job in another process without errors' {
        $script:results.Keys | Should -Contain 'message'
        $script:jobErrors | Should -BeNullOrEmpty
    }

    It 'returns a TcpMessage whose Text, Sequence, Direction and endpoints are readable' {
        $m = $script:results['message']
        $m.PSObject.TypeNames[0] | Should -Be 'Deserialized.PSTcp.TcpMessage'
        $m.Text | Should -BeExactly 'world'
        $m.Sequence | Should -Be 2
        $m.Length | Should -Be 5
        [byte[]]$m.Data | Should -Be ([System.Text.Encoding]::ASCII.GetBytes('world'))
        $m.Source | Should -Be 'SerialSrv'
        # Enums arrive as their number with their name as ToString(), as everywhere in PowerShell remoting.
        $m.Direction.ToString() | Should -Be 'Inbound'
        # Endpoints keep their parts, not only their text.
        $m.RemoteEndPoint.Port | Should -Be $script:results['clientPort']
        "$($m.RemoteEndPoint.Address)" | Should -Be '127.0.0.1'
        "$($m.RemoteEndPoint)" | Should -Be "127.0.0.1:$($script:results['clientPort'])"
        $m.LocalEndPoint.Port | Should -Be $script:results['server'].Port
        ([DateTime]::UtcNow - $m.Timestamp.UtcDateTime).TotalMinutes | Should -BeLessThan 10
    }

    It 'returns a TcpServer whose endpoint and counters are readable' {
        $s = $script:results['server']
        $s.PSObject.TypeNames[0] | Should -Be 'Deserialized.PSTcp.TcpServer'
        $s.Name | Should -Be 'SerialSrv'
        $s.State.ToString() | Should -Be 'Running'
        $s.Port | Should -BeGreaterThan 0
        $s.LocalEndPoint.Port | Should -Be $s.Port
        $s.MessagesReceived | Should -Be 2
        $s.TotalConnections | Should -Be 1
        $s.ConnectionCount | Should -Be 1
        $s.ErrorCount | Should -Be 0
        # Live internals (the queue, the options with a certificate) stay in the job's process.
        $s.PSObject.Properties.Name | Should -Not -Contain 'Queue'
        $s.PSObject.Properties.Name | Should -Not -Contain 'Options'
    }

    It 'returns a TcpConnection whose endpoints and counters are readable' {
        $c = $script:results['client']
        $c.PSObject.TypeNames[0] | Should -Be 'Deserialized.PSTcp.TcpConnection'
        $c.RemoteEndPoint.Port | Should -Be $script:results['server'].Port
        $c.LocalEndPoint.Port | Should -Be $script:results['clientPort']
        $c.MessagesSent | Should -Be 2
        $c.MessagesReceived | Should -Be 2
    }

    It 'formats deserialized objects with the module views' {
        $text = $script:results['message'] | Out-String -Width 160
        $text | Should -Match 'SerialSrv'
        # The endpoint is in the list view (the table leaves its room to Text).
        ($script:results['message'] | Format-List | Out-String -Width 160) | Should -Match "127\.0\.0\.1:$($script:results['clientPort'])"
        $text | Should -Match 'world'
        $text | Should -Match '\d\d:\d\d:\d\d\.\d\d\d'
        $serverText = $script:results['server'] | Out-String -Width 160
        $serverText | Should -Match 'SerialSrv\s+Running'
    }
}

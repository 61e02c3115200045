# The consumer loop shared by Receive-TcpMessage and the consumer job: each error once, no
# internal plumbing on the objects a user formats.
BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
}

Describe 'Errors reach a consumer once' {
    AfterEach {
        if ($peer) { $peer.Dispose() }
        if ($listener) { $listener.Stop() }
        Clear-PSTcpState
    }

    It 'Receive-TcpMessage writes LineTooLong once when the line arrives while it waits' {
        $listener = New-RawListener
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -MaxLineLength 10
        $peer = $listener.AcceptSocket()
        $send = Start-ThreadJob -ArgumentList $peer {
            param($peer)
            Start-Sleep -Milliseconds 300
            $null = $peer.Send([Text.Encoding]::ASCII.GetBytes("ok`n" + ('x' * 50) + "`n"))
        }
        $errors = $null
        $messages = @(Receive-TcpMessage $client -Timeout ([timespan]::FromSeconds(10)) -ErrorVariable errors -ErrorAction SilentlyContinue)
        $send | Wait-Job | Remove-Job
        $messages.Text | Should -Be 'ok'
        @($errors) | Should -HaveCount 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong,*'
    }

    It 'a consumer job gets LineTooLong once, fails with it, and nothing else' {
        $listener = New-RawListener
        $client = Connect-TcpEndpoint 127.0.0.1 $listener.LocalEndpoint.Port -MaxLineLength 10
        $peer = $listener.AcceptSocket()
        $job = Receive-TcpMessage $client -AsJob
        $null = $peer.Send([Text.Encoding]::ASCII.GetBytes("ok`n" + ('x' * 50) + "`n"))
        $job | Wait-Job -Timeout 10 | Should -Not -BeNullOrEmpty
        $job.State | Should -Be 'Failed'
        $errors = $null
        $out = @($job | Receive-Job -ErrorVariable errors -ErrorAction SilentlyContinue)
        $out.Text | Should -Be 'ok'
        @($errors) | Should -HaveCount 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'LineTooLong*'
        $job | Remove-Job
    }
}

Describe 'What Format-List * shows' {
    AfterEach { Clear-PSTcpState }

    It 'keeps the queue, completion task and option bag off connections and servers' {
        $server = Start-TcpEchoServer -Port 0
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        $connectionProperties = $client.PSObject.Properties.Name
        $connectionProperties | Should -Not -Contain 'Queue'
        $connectionProperties | Should -Not -Contain 'Completion'
        $connectionProperties | Should -Not -Contain 'Encoding'
        $serverProperties = $server.PSObject.Properties.Name
        $serverProperties | Should -Not -Contain 'Queue'
        $text = $client, $server | Format-List * | Out-String
        $text | Should -Not -Match 'System\.(Runtime|Threading|Text)\.'
        $text | Should -Not -Match 'PSTcp\.(MessageQueue|TcpServerOptions)'
    }
}

# Servers, connections and queues belong to the process, not to a runspace: what one runspace
# starts, ForEach-Object -Parallel and Start-ThreadJob runspaces of the same process can find
# and use, and PSTcp objects passed with $using: keep working there.

BeforeAll {
    $modulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp/PSTcp.psd1").ProviderPath
    Import-Module $modulePath -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    # Start-ThreadJob ships with pwsh 7.x (Microsoft.PowerShell.ThreadJob; ThreadJob before 7.5).
    if (-not (Get-Command Start-ThreadJob -ErrorAction Ignore)) { Import-Module ThreadJob -ErrorAction Stop }

    function New-Name([string] $Prefix) { "$Prefix-$([guid]::NewGuid().ToString('N').Substring(0, 8))" }
}

AfterAll { Clear-PSTcpState }

Describe 'PSTcp across runspaces of one process' {
    AfterEach {
        Get-Job | Where-Object PSJobTypeName -eq 'ThreadJob' | Remove-Job -Force -ErrorAction SilentlyContinue
        Clear-PSTcpState
    }

    It 'takes 8 x 500 lines from ForEach-Object -Parallel connections: all 4000 arrive, in order per runspace' {
        $server = Start-TcpEchoServer -Port 0 -Name (New-Name 'par-echo')
        $consumer = $server | Receive-TcpMessage -AsJob
        $port = $server.Port

        $results = 1..8 | ForEach-Object -ThrottleLimit 8 -TimeoutSeconds 60 -Parallel {
            $ErrorActionPreference = 'Stop'
            Import-Module $using:modulePath
            $index = $_
            $client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $using:port -Name "par-client-$index"
            1..500 | ForEach-Object { "r$index-$_" } | Send-TcpLine -Connection $client
            # Every echo back proves the server read every line of this connection.
            $echoes = @(Receive-TcpMessage -Connection $client -Count 500 -Timeout 00:00:30)
            $client | Disconnect-TcpEndpoint
            [pscustomobject]@{
                Index    = $index
                Sent     = $client.MessagesSent
                Echoes   = $echoes.Count
                InOrder  = ($echoes.Text -join ',') -eq ((1..500 | ForEach-Object { "r$index-$_" }) -join ',')
            }
        } -ErrorVariable parallelErrors

        $parallelErrors | Should -BeNullOrEmpty
        $results | Should -HaveCount 8
        foreach ($r in $results) {
            $r.Sent | Should -Be 500 -Because "runspace $($r.Index) sent 500 lines"
            $r.Echoes | Should -Be 500 -Because "runspace $($r.Index) got its 500 echoes"
            $r.InOrder | Should -BeTrue -Because "runspace $($r.Index)'s echoes came back in order"
        }

        Wait-Until { (Get-TcpServer -Id $server.Id).MessagesReceived -ge 4000 } -Timeout 20 -Because 'the server counting 4000 messages'
        (Get-TcpServer -Id $server.Id).MessagesReceived | Should -Be 4000
        (Get-TcpServer -Id $server.Id).MessagesDropped | Should -Be 0

        # Stopping completes the queue: the consumer hands over the rest and ends.
        $server | Stop-TcpServer -Confirm:$false
        $consumer | Wait-Job -Timeout 30 | Out-Null
        $consumer.State | Should -Be 'Completed'
        $messages = @($consumer | Receive-Job)
        $messages | Should -HaveCount 4000

        $byRunspace = $messages | Group-Object { ($_.Text -split '-')[0] }
        $byRunspace | Should -HaveCount 8
        foreach ($group in $byRunspace) {
            $index = $group.Name.Substring(1)
            ($group.Group.Text -join ',') | Should -Be ((1..500 | ForEach-Object { "r$index-$_" }) -join ',') -Because "runspace $index's lines arrive in order"
            @($group.Group.ConnectionId | Select-Object -Unique) | Should -HaveCount 1
            ($group.Group.Sequence -join ',') | Should -Be ((1..500) -join ',')
        }
        @($messages.ConnectionId | Select-Object -Unique) | Should -HaveCount 8
    }

    It 'sends from Start-ThreadJob on a connection the main runspace opened and passed with $using:' {
        $server = Start-TcpEchoServer -Port 0 -Name (New-Name 'par-thread')
        $client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port

        $job = Start-ThreadJob {
            $ErrorActionPreference = 'Stop'
            Import-Module $using:modulePath
            $connection = $using:client
            'from the thread 1', 'from the thread 2' | Send-TcpLine -Connection $connection
            $connection.Id
        }
        $job | Wait-Job -Timeout 30 | Out-Null
        $job.State | Should -Be 'Completed'
        $output = @($job | Receive-Job -ErrorVariable jobErrors)
        $jobErrors | Should -BeNullOrEmpty
        $output | Should -Be @($client.Id) -Because 'the thread saw the very same connection'

        $received = @(Receive-TcpMessage -Server $server -Count 2 -Timeout 00:00:10)
        $received.Text | Should -Be @('from the thread 1', 'from the thread 2')
        $client.MessagesSent | Should -Be 2

        # The connection is still the main runspace's to use, echoes included.
        Send-TcpLine -Connection $client -Line 'from the main runspace'
        (Receive-TcpMessage -Server $server -Count 1 -Timeout 00:00:10).Text | Should -Be 'from the main runspace'
        $echoes = @(Receive-TcpMessage -Connection $client -Count 3 -Timeout 00:00:10)
        $echoes.Text | Should -Be @('from the thread 1', 'from the thread 2', 'from the main runspace')
    }

    It 'shares one server queue between consumers in several thread jobs, each message exactly once' {
        $server = Start-TcpEchoServer -Port 0 -Name (New-Name 'par-share')
        $consumers = 1..3 | ForEach-Object {
            Start-ThreadJob {
                Import-Module $using:modulePath
                # Ends when the server stops and its queue is drained.
                Receive-TcpMessage -Server $using:server | ForEach-Object Text
            }
        }
        $client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port
        1..3000 | ForEach-Object { "s$_" } | Send-TcpLine -Connection $client
        Wait-Until { (Get-TcpServer -Id $server.Id).MessagesReceived -ge 3000 } -Timeout 20
        $server | Stop-TcpServer -Confirm:$false

        $consumers | Wait-Job -Timeout 30 | Out-Null
        $consumers.State | Should -Be @('Completed', 'Completed', 'Completed')
        $texts = @($consumers | Receive-Job)
        $texts | Should -HaveCount 3000
        @($texts | Sort-Object -Unique) | Should -HaveCount 3000
    }

    It 'finds the main runspace''s server and connections from ForEach-Object -Parallel (process-wide registry)' {
        $name = New-Name 'par-seen'
        $server = Start-TcpEchoServer -Port 0 -Name $name
        $client = Connect-TcpEndpoint -HostName 127.0.0.1 -Port $server.Port -Name "$name-client"
        Wait-Until { (Get-TcpServer -Id $server.Id).ConnectionCount -eq 1 }

        $seen = 1..2 | ForEach-Object -ThrottleLimit 2 -TimeoutSeconds 30 -Parallel {
            $ErrorActionPreference = 'Stop'
            Import-Module $using:modulePath
            $found = Get-TcpServer -Name $using:name
            [pscustomobject]@{
                Id              = $found.Id
                Port            = $found.Port
                State           = "$($found.State)"
                Same            = [object]::ReferenceEquals($found.PSObject.BaseObject, ($using:server).PSObject.BaseObject)
                ById            = (Get-TcpServer -Id $using:server.Id).Name
                Client          = @(Get-TcpConnection -Name ($using:name + '-client')).Id
                ServerSideCount = @(Get-TcpConnection -Server $found).Count
            }
        } -ErrorVariable parallelErrors

        $parallelErrors | Should -BeNullOrEmpty
        $seen | Should -HaveCount 2
        foreach ($s in $seen) {
            $s.Id | Should -Be $server.Id
            $s.Port | Should -Be $server.Port
            $s.State | Should -Be 'Running'
            $s.Same | Should -BeTrue
            $s.ById | Should -Be $name
            $s.Client | Should -Be @($client.Id)
            $s.ServerSideCount | Should -Be 1
        }

        # The parallel runspaces are gone; what they looked at is untouched.
        (Get-TcpServer -Id $server.Id).State | Should -Be 'Running'
        $client.State | Should -Be 'Open'
        Send-TcpLine -Connection $client -Line 'still here'
        (Receive-TcpMessage -Connection $client -Count 1 -Timeout 00:00:10).Text | Should -Be 'still here'
    }
}

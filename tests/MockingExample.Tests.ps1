# An example of testing code that talks TCP: instead of mocking PSTcp's cmdlets, stand up a
# fake service with Start-TcpServer and point the code under test at it. The function under
# test, Get-RemoteTime, lives in tests/Examples/TimeService.psm1.

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/Examples/TimeService.psm1" -Force

    # The fake time service: answers TIME with a fixed instant, and anything else with nothing.
    # Handlers run in their own runspaces, so everything they need is inside the scriptblock.
    $fake = Start-TcpServer -Port 0 -ScriptBlock {
        param($Message)
        if ($Message.Text -eq 'TIME') { '2024-01-02T03:04:05Z' }
    }
}

AfterAll {
    $fake | Stop-TcpServer
    Remove-Module TimeService -ErrorAction Ignore
}

Describe 'Get-RemoteTime against a fake time service' {
    It 'returns the time the service sends, as a UTC [datetime]' {
        $time = Get-RemoteTime -HostName 127.0.0.1 -Port $fake.Port

        $time | Should -BeOfType [datetime]
        $time | Should -Be ([datetime]::new(2024, 1, 2, 3, 4, 5, [DateTimeKind]::Utc))
        $time.Kind | Should -Be 'Utc'
    }

    It 'sends exactly one TIME request and closes its connection' {
        $before = (Get-TcpServer -Id $fake.Id).MessagesReceived
        $null = Get-RemoteTime -HostName localhost -Port $fake.Port

        # The fake queued what it was sent: the request the code under test made.
        $requests = @(Receive-TcpMessage -Server $fake -Count 1 -Timeout ([TimeSpan]::FromSeconds(5)) |
            Select-Object -Last 1)
        $requests.Text | Should -BeExactly @('TIME')
        (Get-TcpServer -Id $fake.Id).MessagesReceived | Should -Be ($before + 1)
        @(Get-TcpConnection) | Should -HaveCount 0 -Because 'Get-RemoteTime disconnects when done'
    }

    It 'throws when the service answers something that is not a time' {
        $liar = Start-TcpServer -Port 0 -ScriptBlock { param($Message) 'teatime' }
        try {
            { Get-RemoteTime -HostName 127.0.0.1 -Port $liar.Port } | Should -Throw '*not a time*'
        } finally {
            $liar | Stop-TcpServer
        }
    }

    It 'throws ConnectionRefused when no service listens' {
        $gone = Start-TcpServer -Port 0 -ScriptBlock { param($Message) }
        $port = $gone.Port
        $gone | Stop-TcpServer
        { Get-RemoteTime -HostName 127.0.0.1 -Port $port } | Should -Throw -ErrorId 'ConnectionRefused*'
    }
}

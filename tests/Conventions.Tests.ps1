#requires -Version 7.0
# The conventions PowerShell users expect (issue 23, SPEC "Operations and conventions"):
# -WhatIf/-Confirm on what binds ports or opens connections, and -WhatIf binds nothing; tab
# completion for addresses, newlines and prefix sizes; servers and connections named by -Name or
# -Id; a port held by this session's own server named in the error. Every check runs over the
# EXPORTED cmdlets (never a list written here), so a cmdlet or parameter added later is held to
# the same conventions.

BeforeDiscovery {
    $root = Split-Path $PSScriptRoot -Parent
    Import-Module (Join-Path $root 'out/PSTcp/PSTcp.psd1') -Force
    $cmdlets = @(Get-Command -Module PSTcp -CommandType Cmdlet)
    $script:Binders = @($cmdlets | Where-Object { $_.Verb -eq 'Start' -or $_.Name -eq 'Connect-TcpEndpoint' } | ForEach-Object Name)
    # Each exported cmdlet's parameter of one of these names, as test cases.
    function Get-ParameterCase([string[]] $Names) {
        foreach ($c in $cmdlets) {
            foreach ($name in $Names) {
                # Dynamic parameters too (the client ones, -LocalAddress among them): the
                # properties of what the cmdlet's GetDynamicParameters returns.
                $dynamic = @(if ([System.Management.Automation.IDynamicParameters].IsAssignableFrom($c.ImplementingType)) {
                        $holder = [Activator]::CreateInstance($c.ImplementingType).GetDynamicParameters()
                        if ($holder) { $holder.GetType().GetProperties() | Where-Object { $_.GetCustomAttributes([System.Management.Automation.ParameterAttribute], $true) } | ForEach-Object Name }
                    })
                $all = @($c.Parameters.Keys) + $dynamic
                if ($all -contains $name) { @{ Command = $c.Name; Parameter = $name } }
            }
        }
    }
    $script:AddressCases = @(Get-ParameterCase 'Address', 'LocalAddress')
    $script:NewLineCases = @(Get-ParameterCase 'NewLine')
    $script:PrefixCases = @(Get-ParameterCase 'PrefixSize')
    $script:ObjectCases = @(foreach ($c in $cmdlets) {
            foreach ($p in $c.Parameters.Values | Where-Object { $_.ParameterType -in [PSTcp.TcpServer], [PSTcp.TcpServer[]], [PSTcp.TcpConnection], [PSTcp.TcpConnection[]] }) {
                @{ Command = $c.Name; Parameter = $p.Name }
            }
        })
    # Cmdlets that act on servers or connections given as a list (stop, close, suspend ...).
    # Get-TcpFault's -Name is the fault's name; its -Relay takes a relay's name or id (checked below).
    $script:ActOnMany = @($cmdlets | Where-Object {
            $_.Name -ne 'Get-TcpFault' -and
            ($_.Parameters.Values | Where-Object { $_.ParameterType -in [PSTcp.TcpServer[]], [PSTcp.TcpConnection[]] })
        } | ForEach-Object Name)
}

BeforeAll {
    Import-Module "$PSScriptRoot/../out/PSTcp/PSTcp.psd1" -Force
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force

    function Get-Completion([string] $Line) {
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches | ForEach-Object CompletionText)
    }

    # Required arguments for a command line that completes a parameter of $Command.
    function Get-Prefix([string] $Command) {
        switch -Wildcard ($Command) {
            'Connect-TcpEndpoint' { 'Connect-TcpEndpoint 127.0.0.1 1' }
            'Send-TcpLine' { 'Send-TcpLine -HostName 127.0.0.1 -Port 1' }
            'Send-TcpMessage' { 'Send-TcpMessage -HostName 127.0.0.1 -Port 1' }
            'Invoke-TcpRequest' { 'Invoke-TcpRequest 127.0.0.1 1' }
            'Enter-TcpSession' { 'Enter-TcpSession -Listen -Port 1' }
            default { $Command }
        }
    }
}

Describe '-WhatIf and -Confirm on <_>' -ForEach $Binders {
    It 'supports ShouldProcess' {
        $command = Get-Command $_
        $command.Parameters.Keys | Should -Contain 'WhatIf'
        $command.Parameters.Keys | Should -Contain 'Confirm'
    }
}

Describe '-WhatIf binds nothing' {
    AfterEach { Clear-PSTcpState }

    It 'Start-TcpEchoServer, Start-TcpServer, Start-TcpRelay and Enter-TcpSession -Listen with -WhatIf leave the port free for a real server' {
        $port = Get-FreeTcpPort
        $r = Invoke-Captured {
            Start-TcpEchoServer -Port $port -WhatIf
            Start-TcpServer -Port $port -ScriptBlock { 'x' } -WhatIf
            Start-TcpServer -Port $port -Broadcast -WhatIf
            Start-TcpRelay -Port $port -TargetHost 127.0.0.1 -TargetPort 9 -WhatIf
            Enter-TcpSession -Listen -Port $port -WhatIf
        }
        $r.Errors | Should -BeNullOrEmpty
        $r.Output | Should -BeNullOrEmpty
        @(Get-TcpServer) | Should -HaveCount 0
        Test-PortBindable $port | Should -BeTrue
        # And the real one binds that port.
        $server = Start-TcpEchoServer -Port $port
        $server.Port | Should -Be $port
        @(Get-TcpServer) | Should -HaveCount 1
    }

    It 'every exported Start-* cmdlet with -WhatIf starts no server' {
        $port = Get-FreeTcpPort
        foreach ($name in $Binders | Where-Object { $_ -like 'Start-*' }) {
            $command = Get-Command $name
            $extra = @{}
            # Mandatory parameters of the default set, given harmless values.
            $set = @($command.ParameterSets | Where-Object IsDefault) + @($command.ParameterSets) | Select-Object -First 1
            foreach ($p in $set.Parameters | Where-Object IsMandatory) {
                $extra[$p.Name] = switch ($p.ParameterType) {
                    { $_ -eq [int] } { 9 }
                    { $_ -eq [string] } { '127.0.0.1' }
                    { $_ -eq [scriptblock] } { { 'x' } }
                    { $_ -eq [System.Management.Automation.SwitchParameter] } { $true }
                    default { $null }
                }
            }
            $r = Invoke-Captured { & $name -Port $port -WhatIf @extra }
            $r.Errors | Should -BeNullOrEmpty -Because "$name -WhatIf"
            @(Get-TcpServer) | Should -HaveCount 0 -Because "$name -WhatIf"
        }
        Test-PortBindable $port | Should -BeTrue
    }

    It 'Connect-TcpEndpoint -WhatIf opens no connection' {
        $server = Start-TcpEchoServer -Port 0
        $r = Invoke-Captured { Connect-TcpEndpoint 127.0.0.1 $server.Port -WhatIf }
        $r.Output | Should -BeNullOrEmpty
        @(Get-TcpConnection) | Should -HaveCount 0
        # Nothing connected: the server accepted nobody (a connect would be counted at once).
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Wait-Until { $server.TotalConnections -ge 1 } -Timeout 10
        $server.TotalConnections | Should -Be 1
        $client | Disconnect-TcpEndpoint
    }

    It 'Enter-TcpSession -WhatIf sends nothing' {
        $server = Start-TcpEchoServer -Port 0
        $r = Invoke-Captured { 'hello' | Enter-TcpSession 127.0.0.1 $server.Port -WhatIf }
        $r.Errors | Should -BeNullOrEmpty
        $server.TotalConnections | Should -Be 0
    }
}

Describe 'Completion of -<Parameter> on <Command>' -ForEach $AddressCases {
    It "offers this machine's own addresses: loopback, the wildcards and the interfaces'" {
        $offered = Get-Completion "$(Get-Prefix $Command) -$Parameter "
        foreach ($address in '127.0.0.1', '::1', '0.0.0.0', '::') { $offered | Should -Contain $address }
        $own = @([System.Net.NetworkInformation.NetworkInterface]::GetAllNetworkInterfaces() |
                Where-Object OperationalStatus -EQ 'Up' | ForEach-Object { $_.GetIPProperties().UnicastAddresses } | ForEach-Object { $_.Address.ToString() })
        foreach ($address in $own) { $offered | Should -Contain $address }
        # What was typed narrows it.
        Get-Completion "$(Get-Prefix $Command) -$Parameter 127." | Should -Contain '127.0.0.1'
        Get-Completion "$(Get-Prefix $Command) -$Parameter 127." | Should -Not -Contain '::1'
    }
}

Describe 'Completion of -<Parameter> on <Command>' -ForEach $NewLineCases {
    It 'offers LF, CRLF, CR and NUL as PowerShell strings' {
        $offered = Get-Completion "$(Get-Prefix $Command) -$Parameter "
        $offered | Should -Contain '"`n"'
        $offered | Should -Contain '"`r`n"'
        $offered | Should -Contain '"`r"'
        # Each choice is a string PowerShell reads back as that terminator.
        foreach ($choice in $offered) { (Invoke-Expression $choice).Length | Should -BeGreaterThan 0 }
        (Invoke-Expression '"`r`n"') | Should -BeExactly "`r`n"
        # A string begun narrows it.
        $narrowed = Get-Completion ("$(Get-Prefix $Command) -$Parameter " + '"`r')
        $narrowed | Should -Contain '"`r`n"'
        $narrowed | Should -Not -Contain '"`n"'
    }
}

Describe 'Completion of -<Parameter> on <Command>' -ForEach $PrefixCases {
    It 'offers the prefix sizes LengthPrefix framing takes' {
        $offered = Get-Completion "$(Get-Prefix $Command) -$Parameter "
        $offered | Should -Be '1', '2', '3', '4', '8'
    }
}

Describe '<Command> -<Parameter> takes a name or an id, and completes them' -ForEach $ObjectCases {
    It 'resolves names and ids (a transformation) and has a completer' {
        $p = (Get-Command $Command).Parameters[$Parameter]
        $kinds = @($p.Attributes | ForEach-Object { $_.GetType().Name })
        $kinds | Should -Contain $(if ($p.ParameterType.Name -like 'TcpServer*') { 'ServerTransformationAttribute' } else { 'ConnectionTransformationAttribute' })
        $kinds | Should -Contain 'ArgumentCompleterAttribute'
    }
}

Describe '<_> acts on servers or connections by -Name and -Id too' -ForEach $ActOnMany {
    It 'has -Name (wildcards) and -Id' {
        $command = Get-Command $_
        $command.Parameters.Keys | Should -Contain 'Name'
        $command.Parameters.Keys | Should -Contain 'Id'
        ($command.Parameters['Name'].Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }) | Should -Not -BeNullOrEmpty
    }
}

Describe 'Disconnect-TcpEndpoint -Name and -Id' {
    AfterEach { Clear-PSTcpState }

    It 'closes client connections by name (wildcards) and by id, and reports names and ids that match none' {
        $server = Start-TcpEchoServer -Port 0
        $a = Connect-TcpEndpoint 127.0.0.1 $server.Port -Name 'worker-a'
        $b = Connect-TcpEndpoint 127.0.0.1 $server.Port -Name 'worker-b'
        $other = Connect-TcpEndpoint 127.0.0.1 $server.Port -Name 'other'
        $closed = @(Disconnect-TcpEndpoint -Name 'worker-*' -PassThru)
        $closed.Name | Should -Be 'worker-a', 'worker-b'
        $a.State | Should -Be 'Closed'
        $b.State | Should -Be 'Closed'
        $other.State | Should -Be 'Open'
        Disconnect-TcpEndpoint -Id $other.Id
        $other.State | Should -Be 'Closed'
        @(Get-TcpConnection) | Should -HaveCount 0

        $r = Invoke-Captured { Disconnect-TcpEndpoint -Name 'nobody'; Disconnect-TcpEndpoint -Id 987654 }
        @($r.Errors | ForEach-Object { ($_.FullyQualifiedErrorId -split ',')[0] }) | Should -Be 'ConnectionNotFound', 'ConnectionNotFound'
        # A wildcard that matches nothing is no error, as with Get-TcpConnection.
        (Invoke-Captured { Disconnect-TcpEndpoint -Name 'none-*' }).Errors | Should -BeNullOrEmpty
    }

    It 'closes a connection a server accepted, by its id' {
        $server = Start-TcpEchoServer -Port 0
        $client = Connect-TcpEndpoint 127.0.0.1 $server.Port
        Wait-Until { @(Get-TcpConnection -Server $server).Count -eq 1 } -Timeout 10
        $accepted = @(Get-TcpConnection -Server $server)[0]
        Disconnect-TcpEndpoint -Id $accepted.Id
        Wait-Until { $client.State -eq 'Closed' -or $client.State -eq 'HalfClosed' } -Timeout 10
        $accepted.State | Should -Be 'Closed'
    }

    It 'completes connection names for -Name' {
        $server = Start-TcpEchoServer -Port 0
        $null = Connect-TcpEndpoint 127.0.0.1 $server.Port -Name 'completion-me'
        Get-Completion 'Disconnect-TcpEndpoint -Name compl' | Should -Be 'completion-me'
    }
}

Describe "A port held by this session's own server" {
    AfterEach { Clear-PSTcpState }

    It 'is one PortInUse error that names the server (Name, Id) and the command that frees it, from <_>' -ForEach @(
        'Start-TcpEchoServer', 'Start-TcpServer', 'Start-TcpRelay', 'Enter-TcpSession -Listen'
    ) {
        $holder = Start-TcpEchoServer -Port 0 -Name 'Holder'
        $port = $holder.Port
        $before = $Error.Count
        $r = switch ($_) {
            'Start-TcpEchoServer' { Invoke-Captured { $server = Start-TcpEchoServer -Port $port } }
            'Start-TcpServer' { Invoke-Captured { $server = Start-TcpServer -Port $port -ScriptBlock { 'x' } } }
            'Start-TcpRelay' { Invoke-Captured { $server = Start-TcpRelay -Port $port -TargetHost 127.0.0.1 -TargetPort 9 } }
            'Enter-TcpSession -Listen' { Invoke-Captured { 'x' | Enter-TcpSession -Listen -Port $port } }
        }
        # Exactly one error, nothing after it ("argument is null" and the like).
        $r.Errors | Should -HaveCount 1
        $Error.Count - $before | Should -Be 1
        $err = $r.Errors[0]
        $err.FullyQualifiedErrorId | Should -BeLike 'PortInUse,*'
        $err.Exception.Message | Should -Match "Port $port on 127\.0\.0\.1 is already in use by Holder \(Id $($holder.Id)\), a server of this PowerShell session"
        $err.Exception.Message | Should -Match 'Stop-TcpServer -Name Holder'
        $err.ErrorDetails.RecommendedAction | Should -Be 'Stop-TcpServer -Name Holder'
        @(Get-TcpServer) | Should -HaveCount 1
        # The recommended command frees the port.
        Invoke-Expression $err.ErrorDetails.RecommendedAction
        $again = Start-TcpEchoServer -Port $port
        $again.Port | Should -Be $port
    }

    It 'is named by its Id when its name is not its own, and by the wildcard address it holds' {
        $first = Start-TcpEchoServer -Port 0 -Name 'Twin' -Address 0.0.0.0
        $null = Start-TcpEchoServer -Port 0 -Name 'Twin'
        $r = Invoke-Captured { Start-TcpEchoServer -Port $first.Port }
        $r.Errors | Should -HaveCount 1
        $r.Errors[0].Exception.Message | Should -Match "by Twin \(Id $($first.Id)\)"
        $r.Errors[0].ErrorDetails.RecommendedAction | Should -Be "Stop-TcpServer -Id $($first.Id)"
    }

    It 'names the server that holds a Unix socket path' -Skip:$IsWindows {
        $path = Join-Path ([IO.Path]::GetTempPath()) "pstcp-conv-$PID-$([guid]::NewGuid().ToString('n').Substring(0, 8)).sock"
        try {
            $holder = Start-TcpEchoServer -UnixSocket $path -Name 'SockHolder'
            $r = Invoke-Captured { Start-TcpEchoServer -UnixSocket $path }
            $r.Errors | Should -HaveCount 1
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'PortInUse,*'
            $r.Errors[0].Exception.Message | Should -Match "SockHolder \(Id $($holder.Id)\).*Stop-TcpServer -Name SockHolder"
        } finally { Remove-Item $path -ErrorAction Ignore }
    }

    It 'is still the plain PortInUse error when another program holds the port' {
        $listener = New-RawListener
        try {
            $r = Invoke-Captured { Start-TcpEchoServer -Port $listener.LocalEndpoint.Port }
            $r.Errors | Should -HaveCount 1
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'PortInUse,*'
            $r.Errors[0].Exception.Message | Should -Not -Match 'this PowerShell session'
        } finally { $listener.Stop() }
    }
}

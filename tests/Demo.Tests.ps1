# ./build.ps1 Demo (build/Demo.ps1): it streams standard input line by line, so a line is
# echoed while the input is still open, and with no input it says how to give some.

BeforeAll {
    Import-Module "$PSScriptRoot/ChildProcess.psm1" -Force
    $script:Demo = (Resolve-Path "$PSScriptRoot/../build/Demo.ps1").ProviderPath
    $script:ModulePath = (Resolve-Path "$PSScriptRoot/../out/PSTcp").ProviderPath
}

Describe 'The demo' {
    AfterEach {
        Stop-ChildPwsh $child
        $child = $null
    }

    It 'echoes a line before its input ends, then the rest, and ends at the end of input' {
        # Port 0: the test must not depend on 8888 being free.
        $child = Start-ChildPwsh -File $Demo -ArgumentList '-ModulePath', $ModulePath, '-Port', '0'
        $child.Input.WriteLine('a')
        Wait-ChildLine $child '^(echo|--->)(:)? a$' -Timeout 30 | Should -Not -BeNullOrEmpty
        $child.Input.WriteLine('b')
        $child.Input.Close()
        $result = Wait-ChildExit $child -Timeout 30
        $result.ExitCode | Should -Be 0 -Because $result.Errors
        $result.Lines | Should -Contain 'echo: a'
        $result.Lines | Should -Contain 'echo: b'
        $result.Lines | Should -Contain '---> a'
        $result.Lines | Should -Contain '---> b'
        $result.Lines | Should -Contain 'Server received 2 line(s); consumer job Completed.'
    }

    It 'says how to give it input when there is none' {
        $child = Start-ChildPwsh -File $Demo -ArgumentList '-ModulePath', $ModulePath, '-Port', '0'
        $child.Input.Close()
        $result = Wait-ChildExit $child -Timeout 30
        $result.ExitCode | Should -Be 0 -Because $result.Errors
        ($result.Lines -join "`n") | Should -BeLike '*No input*printf*Demo*terminal*'
        $result.Lines | Should -Contain 'Server received 0 line(s); consumer job Completed.'
    }
}

# Bytes and text: UTF-8 conversions and hex for assertions.

function ConvertTo-Bytes {
    # UTF-8 bytes of a string; escapes are the caller's (use "`r`n" in double quotes).
    param([Parameter(Mandatory, Position = 0)] [AllowEmptyString()] [string] $Text)
    , $script:Utf8.GetBytes($Text)
}

function ConvertFrom-Bytes {
    param([Parameter(Mandatory, Position = 0)] [AllowEmptyCollection()] [byte[]] $Bytes)
    $script:Utf8.GetString($Bytes)
}

function ConvertTo-Hex {
    param([Parameter(Position = 0)] [AllowNull()] [AllowEmptyCollection()] [byte[]] $Bytes)
    if ($null -eq $Bytes) { return '<null>' }
    [System.BitConverter]::ToString($Bytes)
}

function Join-Bytes {
    # Concatenates byte arrays (or strings, taken as UTF-8) into one byte[].
    param([Parameter(Mandatory, ValueFromRemainingArguments)] [object[]] $Parts)
    $stream = [System.IO.MemoryStream]::new()
    foreach ($part in $Parts) {
        if ($part -is [string]) { $bytes = $script:Utf8.GetBytes($part) } else { $bytes = [byte[]]$part }
        $stream.Write($bytes, 0, $bytes.Length)
    }
    , $stream.ToArray()
}

module pstcp.bench/go-echo

go 1.19

module pstcp.bench/go-load

go 1.19

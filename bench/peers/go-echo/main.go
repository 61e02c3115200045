// go-echo is the benchmark's reference peer: a minimal line-echo server.
//
// One goroutine per connection, a bufio reader and writer; every line read is
// written back byte for byte, and the writer is flushed only when no more input
// is buffered, so pipelined lines leave in large writes.
//
// Usage: go-echo [-addr 127.0.0.1:0] [-bufsize 65536]
// The bound port is printed as the first line of stdout. The process exits when
// killed, or with -exit-on-stdin-eof when stdin reaches end of file.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	bufSize := flag.Int("bufsize", 64<<10, "size of each connection's read and write buffers")
	exitOnEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin is closed")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)

	if *exitOnEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}

	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(1)
		}
		go handle(c, *bufSize)
	}
}

func handle(c net.Conn, bufSize int) {
	defer c.Close()
	r := bufio.NewReaderSize(c, bufSize)
	w := bufio.NewWriterSize(c, bufSize)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return
			}
		}
		if err == bufio.ErrBufferFull {
			continue // a line longer than the buffer: echo it in pieces
		}
		if err != nil {
			w.Flush() // EOF (a final fragment was written above) or a read error
			return
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

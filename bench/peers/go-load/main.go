// go-load: a second load generator for the window shape, written apart from PSTcp.Bench (C#)
// so that the figures don't rest on one client's costs. Each client keeps --window-lines lines
// of --line-size bytes in flight: a writer goroutine sends whatever whole lines the window has
// room for and flushes, a reader counts (and checks) the echoes and frees the room. It warms
// up for --warmup seconds, measures for --seconds, and prints one JSON line with the same keys
// as PSTcp.Bench: ok, lines_per_sec, server_cpu_ns_per_op (from /proc/<pid>/stat with --pid).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func serverCPU(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces) start at state (field 3).
	text := string(raw)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		return 0, false
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

func main() {
	host := flag.String("host", "127.0.0.1", "server address")
	port := flag.Int("port", 8888, "server port")
	clients := flag.Int("clients", 16, "connections")
	window := flag.Int("window-lines", 128, "lines in flight per connection")
	size := flag.Int("line-size", 64, "bytes per line, newline included")
	seconds := flag.Float64("seconds", 2, "measured time")
	warmup := flag.Float64("warmup", 3, "load before measuring")
	pid := flag.Int("pid", 0, "server process, for its CPU time")
	flag.Parse()

	line := make([]byte, *size)
	for i := range line {
		line[i] = 'a' + byte(i%26)
	}
	line[len(line)-1] = '\n'

	var measured, mismatches int64
	var measuring int32
	stop := make(chan struct{})
	var errMu sync.Mutex
	var firstErrors []string
	fail := func(err error) {
		errMu.Lock()
		if len(firstErrors) < 5 {
			firstErrors = append(firstErrors, err.Error())
		}
		errMu.Unlock()
	}
	stopping := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			fail(err)
			break
		}
		wg.Add(1)
		go func(conn net.Conn) {
			defer wg.Done()
			defer conn.Close()
			room := make(chan struct{}, *window)
			go func() {
				w := bufio.NewWriterSize(conn, 64*1024)
				for {
					select {
					case <-stop:
						return
					case room <- struct{}{}:
					}
					w.Write(line)
				more:
					for {
						select {
						case room <- struct{}{}:
							w.Write(line)
						default:
							break more
						}
					}
					if err := w.Flush(); err != nil {
						if !stopping() {
							fail(err)
						}
						return
					}
				}
			}()
			r := bufio.NewReaderSize(conn, 64*1024)
			for !stopping() {
				echo, err := r.ReadSlice('\n')
				if err != nil {
					if !stopping() {
						fail(err)
					}
					return
				}
				if !bytes.Equal(echo, line) {
					atomic.AddInt64(&mismatches, 1)
				}
				<-room
				if atomic.LoadInt32(&measuring) == 1 {
					atomic.AddInt64(&measured, 1)
				}
			}
		}(conn)
	}

	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	cpu0, haveCPU := serverCPU(*pid)
	start := time.Now()
	atomic.StoreInt32(&measuring, 1)
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	atomic.StoreInt32(&measuring, 0)
	elapsed := time.Since(start).Seconds()
	cpu1, _ := serverCPU(*pid)
	lines := atomic.LoadInt64(&measured)
	close(stop)
	// Readers blocked on an echo that will not come end when their connection closes.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}

	result := map[string]interface{}{
		"generator":     "go-load",
		"clients":       *clients,
		"window_lines":  *window,
		"line_size":     *size,
		"seconds":       elapsed,
		"lines":         lines,
		"lines_per_sec": float64(lines) / elapsed,
		"mismatches":    atomic.LoadInt64(&mismatches),
		"first_errors":  firstErrors,
	}
	if haveCPU && lines > 0 {
		result["server_cpu_ns_per_op"] = float64((cpu1 - cpu0).Nanoseconds()) / float64(lines)
	}
	result["ok"] = lines > 0 && len(firstErrors) == 0 && atomic.LoadInt64(&mismatches) == 0
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}

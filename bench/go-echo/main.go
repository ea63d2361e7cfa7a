// A goroutine-per-connection echo server speaking Seesaw's protocol, written
// the way the source tutorial does it, and narrating on stderr as lesson 6's
// server does: the yardstick for lesson 6's reference in bench/run.
// Usage: go run . [ADDR]
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "listening on", listener.Addr())
	// After a failed accept (out of file descriptors, most often), wait before
	// the next one: 5 ms, doubling while it keeps failing, at most 1 s, as
	// net/http does and as lesson 6's reference does.
	var delay time.Duration
	for {
		conn, err := listener.Accept()
		if err != nil {
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			fmt.Fprintf(os.Stderr, "could not accept a connection: %v; trying again in %v\n", err, delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		fmt.Fprintln(os.Stderr, "accepted", conn.RemoteAddr())
		go serve(conn)
	}
}

// serve echoes each newline-ended message back in one write, until end of file.
func serve(conn net.Conn) {
	defer fmt.Fprintln(os.Stderr, "closed the connection to", conn.RemoteAddr())
	defer conn.Close()
	reader := bufio.NewReaderSize(conn, 64*1024)
	for {
		message, err := reader.ReadSlice('\n')
		if len(message) > 0 {
			if _, werr := conn.Write(message); werr != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "read %d bytes from %s, wrote %d bytes back\n", len(message), conn.RemoteAddr(), len(message))
		}
		if err != nil {
			return
		}
	}
}

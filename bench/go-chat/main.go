// A chat room server in Go speaking lesson 11's protocol ("Budget Chat"),
// with the same limits, in the idiomatic Go shape: a goroutine per member
// reading its lines, a buffered channel of OutboxLines lines per member and
// a writer goroutine that empties it, the room a map under a sync.Mutex, and
// a fan-out that never waits (a full outbox cuts that member off). It
// narrates on stderr as lesson 11's server does: the yardstick for lessons
// 11 and 12 in bench/compare-room. One difference: a line's bytes are passed
// on as they came, where lesson 11 turns bytes that are not UTF-8 into
// U+FFFD (the benchmark's lines are ASCII).
// Usage: go run . [ADDR]
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	greeting = "Welcome to the room! What is your name?\n"
	// MaxName is the longest name: 16 ASCII letters or digits.
	maxName = 16
	// MaxLine is the longest line a member may send, its newline not counted.
	maxLine = 4096
	// OutboxLines is how many lines may wait for a member's writer.
	outboxLines = 256
	// A gentle close waits at most this long for the client to stop sending,
	// and reads at most lingerBytes meanwhile (lesson 5's lingering close).
	lingerTime  = time.Second
	lingerBytes = 4 << 20
)

// member is what the room keeps of one member.
type member struct {
	conn   *net.TCPConn
	outbox chan []byte
	// cutOff is set (under the room's lock) once the member has been cut
	// off, so that the narration says it once.
	cutOff bool
}

// room is every named member, by name.
type room struct {
	mu      sync.Mutex
	members map[string]*member
}

// batched: with -batch, a member's writer sends all the lines waiting in its
// outbox with one Write, as lesson 12's reference does; without it, one Write
// a line, the shape a Go programmer writes first.
var batched bool

func main() {
	addr := "127.0.0.1:5555"
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "-batch" {
		batched = true
		args = args[1:]
	}
	if len(args) > 0 {
		addr = args[0]
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "listening on", listener.Addr())
	r := &room{members: make(map[string]*member)}
	// After a failed accept (out of file descriptors, most often), wait
	// before the next one: 5 ms, doubling, at most 1 s, as net/http does.
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
		go func() {
			if err := r.serve(conn.(*net.TCPConn)); err != nil {
				fmt.Fprintf(os.Stderr, "%v: %v; closed the connection\n", conn.RemoteAddr(), err)
			} else {
				fmt.Fprintln(os.Stderr, "closed the connection to", conn.RemoteAddr())
			}
		}()
	}
}

// validName is true for 1 to maxName ASCII letters or digits.
func validName(name string) bool {
	if len(name) < 1 || len(name) > maxName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

var errTooLong = errors.New("line too long")

// readLine reads one line of at most maxLine bytes, its newline (and a \r
// before it) taken off. The reader's buffer holds maxLine+1 bytes, so a
// longer line fills it without a newline: errTooLong. End of file, even
// after half a line, is io.EOF.
func readLine(reader *bufio.Reader) ([]byte, error) {
	line, err := reader.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errTooLong
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// serve serves one client: its name, then its lines, until it leaves.
func (r *room) serve(conn *net.TCPConn) error {
	defer conn.Close()
	if _, err := io.WriteString(conn, greeting); err != nil {
		return err
	}
	reader := bufio.NewReaderSize(conn, maxLine+1)
	line, err := readLine(reader)
	// A copy: the reader's buffer holds the next line once it is read.
	name := string(line)
	switch {
	case err == errTooLong:
		return refuse(conn, "that name is too long")
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	case !validName(name):
		return refuse(conn, "a name is 1 to 16 letters or digits")
	}
	me := &member{conn: conn, outbox: make(chan []byte, outboxLines)}
	if !r.join(name, me) {
		return refuse(conn, "that name is taken")
	}
	fmt.Fprintf(os.Stderr, "%v joined as %s\n", conn.RemoteAddr(), name)
	written := make(chan struct{})
	go write(me, written)
	for {
		var text []byte
		text, err = readLine(reader)
		if err != nil {
			break
		}
		r.say(name, text)
	}
	r.leave(name)
	fmt.Fprintf(os.Stderr, "%s left\n", name)
	// Leaving closed the outbox: the writer sends what waits, then ends; a
	// member that has stopped reading gets lingerTime for it, no more.
	conn.SetWriteDeadline(time.Now().Add(lingerTime))
	<-written
	switch err {
	case errTooLong:
		return refuse(conn, "that line is too long")
	case io.EOF:
		return nil
	default:
		return err
	}
}

// write sends each line of the member's outbox, in order, until the room
// closes the outbox. A write that fails (the member has gone) cuts the
// connection off, so that the reader sees the end too. Go's TCP
// connections send small writes at once (TCP_NODELAY is on by default).
func write(me *member, written chan<- struct{}) {
	defer close(written)
	for line := range me.outbox {
		if batched {
			line = withWaitingLines(line, me.outbox)
		}
		if _, err := me.conn.Write(line); err != nil {
			shutdown(me.conn)
			for range me.outbox {
			}
			return
		}
	}
}

// withWaitingLines appends to first every line already waiting in outbox,
// without waiting for more.
func withWaitingLines(first []byte, outbox <-chan []byte) []byte {
	lines := append([]byte(nil), first...)
	for {
		select {
		case line, open := <-outbox:
			if !open {
				return lines
			}
			lines = append(lines, line...)
		default:
			return lines
		}
	}
}

// shutdown shuts the connection down both ways: the reader sees end of
// file, a blocked writer fails.
func shutdown(conn *net.TCPConn) {
	conn.CloseRead()
	conn.CloseWrite()
}

// deliver puts line in the member's outbox without ever waiting; a member
// whose outbox is full is not reading: it is cut off, once. Called with the
// room's lock held.
func deliver(name string, to *member, line []byte) {
	select {
	case to.outbox <- line:
	default:
		if !to.cutOff {
			to.cutOff = true
			fmt.Fprintf(os.Stderr, "%s has %d lines waiting and reads none: disconnected\n", name, outboxLines)
			shutdown(to.conn)
		}
	}
}

// join adds name to the room, or returns false if it is taken.
func (r *room) join(name string, me *member) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.members[name]; taken {
		return false
	}
	others := make([]string, 0, len(r.members))
	for other := range r.members {
		others = append(others, other)
	}
	sort.Strings(others)
	deliver(name, me, []byte("* in the room: "+strings.Join(others, ", ")+"\n"))
	entered := []byte("* " + name + " has entered the room\n")
	for other, to := range r.members {
		deliver(other, to, entered)
	}
	r.members[name] = me
	return true
}

// say sends "[FROM] text" to every member but from. One line is shared by
// every outbox: nobody changes it.
func (r *room) say(from string, text []byte) {
	line := make([]byte, 0, len(from)+len(text)+4)
	line = append(append(append(append(line, '['), from...), "] "...), text...)
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, to := range r.members {
		if name != from {
			deliver(name, to, line)
		}
	}
}

// leave takes name out of the room, closes its outbox and tells the others.
func (r *room) leave(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	me, present := r.members[name]
	if !present {
		return
	}
	delete(r.members, name)
	close(me.outbox)
	left := []byte("* " + name + " has left the room\n")
	for other, to := range r.members {
		deliver(other, to, left)
	}
}

// refuse sends one error line, "* error: WHY", and ends the connection
// gently: the client reads the line, then end of file.
func refuse(conn *net.TCPConn, why string) error {
	conn.SetWriteDeadline(time.Now().Add(lingerTime))
	io.WriteString(conn, "* error: "+why+"\n")
	return closeGently(conn)
}

// closeGently shuts the sending side down, then reads and throws away what
// the client still sends, until it closes too, or lingerBytes have come, or
// lingerTime has passed (lesson 5's lingering close): closing with unread
// bytes would reset the connection and could destroy our last line.
func closeGently(conn *net.TCPConn) error {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, err := io.CopyN(io.Discard, conn, lingerBytes)
	var timeout net.Error
	if err == io.EOF || err == nil || errors.As(err, &timeout) && timeout.Timeout() {
		return nil
	}
	return err
}

// Command delayrelay is a TCP relay that delays every byte by a fixed time
// in each direction: a slow network link (a long round trip) for tests and
// demos on machines without netem. Throughput is not limited: bytes read
// at time T are written at T + delay, in order, while later bytes keep
// being read (up to --buffer bytes in flight per direction; beyond that the
// relay stops reading, and TCP's flow control slows the sender).
//
//	delayrelay --listen ADDR --target ADDR [--delay 100ms] [--delay-back D]
//	           [--buffer 4MiB-in-bytes]
//
// --delay applies to bytes going from the client to the target,
// --delay-back to the replies (default: the same as --delay). A half-close
// is passed on after the bytes before it. Prints "delayrelay: listening on
// ADDR" once it accepts connections; one line per connection opened and
// closed on stderr. Runs until SIGTERM/SIGINT.
//
// Exit status: 0 after a signal, 1 when it cannot listen, 2 on a usage error.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type chunk struct {
	data []byte // nil: end of stream (half-close)
	due  time.Time
}

// pipe copies src to dst, each read delivered delay after it arrived.
// maxInFlight bounds the bytes read and not yet written.
func pipe(dst, src *net.TCPConn, delay time.Duration, maxInFlight int64, done func()) {
	defer done()
	ch := make(chan chunk, 4096)
	var inFlight atomic.Int64
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	writerGone := make(chan struct{})
	go func() { // writer
		defer close(writerGone)
		for c := range ch {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if c.data == nil {
				_ = dst.CloseWrite()
				continue
			}
			_, err := dst.Write(c.data)
			mu.Lock()
			inFlight.Add(-int64(len(c.data)))
			cond.Broadcast()
			mu.Unlock()
			if err != nil {
				// The far side is gone: stop reading this side too.
				_ = src.Close()
				for range ch {
				}
				return
			}
		}
	}()
	for {
		mu.Lock()
		for inFlight.Load() >= maxInFlight {
			cond.Wait() // the writer always gets going again (or fails and closes src)
		}
		mu.Unlock()
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		now := time.Now()
		if n > 0 {
			inFlight.Add(int64(n))
			ch <- chunk{data: buf[:n], due: now.Add(delay)}
		}
		if err != nil {
			if err == io.EOF {
				ch <- chunk{due: now.Add(delay)}
			} else {
				_ = dst.Close() // reset-like: the other side learns at once
			}
			close(ch)
			<-writerGone
			return
		}
	}
}

func main() {
	listen := flag.String("listen", "", "address to accept connections on (host:port)")
	target := flag.String("target", "", "address to relay to (host:port)")
	delay := flag.Duration("delay", 100*time.Millisecond, "delay of the bytes going to the target")
	delayBack := flag.Duration("delay-back", -1, "delay of the bytes coming back (default: --delay)")
	buffer := flag.Int64("buffer", 4<<20, "bytes in flight per direction before the relay stops reading")
	flag.Parse()
	if *listen == "" || *target == "" || flag.NArg() > 0 || *delay < 0 || *buffer < 1 {
		fmt.Fprintln(os.Stderr, "usage: delayrelay --listen ADDR --target ADDR [--delay D] [--delay-back D] [--buffer BYTES]")
		os.Exit(2)
	}
	if *delayBack < 0 {
		*delayBack = *delay
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delayrelay: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("delayrelay: listening on %s, relaying to %s with %s / %s\n", ln.Addr(), *target, *delay, *delayBack)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		_ = ln.Close()
	}()
	var nconn atomic.Int64
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			break
		}
		id := nconn.Add(1)
		go func() {
			up, err := net.DialTimeout("tcp", *target, 10*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "delayrelay: connection %d from %s: %v\n", id, c.RemoteAddr(), err)
				_ = c.Close()
				return
			}
			fmt.Fprintf(os.Stderr, "delayrelay: connection %d from %s opened\n", id, c.RemoteAddr())
			a, b := c.(*net.TCPConn), up.(*net.TCPConn)
			var wg sync.WaitGroup
			wg.Add(2)
			go pipe(b, a, *delay, *buffer, wg.Done)
			go pipe(a, b, *delayBack, *buffer, wg.Done)
			wg.Wait()
			_ = a.Close()
			_ = b.Close()
			fmt.Fprintf(os.Stderr, "delayrelay: connection %d closed\n", id)
		}()
	}
}

package harness

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tailLines is how much of a child's output a failing test prints.
const tailLines = 40

// Proc is a child process started by a test. Its stdout and stderr are kept
// in memory; stdout is also split into lines readable while it runs.
type Proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	stdout *lineBuffer
	stderr *lineBuffer

	done     chan struct{} // closed when the process has exited
	waitErr  error
	exitCode int
}

// Start runs the executable at path name with args; env entries (KEY=VALUE)
// are added to the test's environment. The process is killed (SIGKILL) at
// the end of the test if still running, and when the test failed the tail
// of its stdout and stderr is logged.
func Start(t testing.TB, name string, args []string, env []string) *Proc {
	t.Helper()
	p := &Proc{
		t:      t,
		name:   shortName(name),
		cmd:    exec.Command(name, args...),
		stdout: newLineBuffer(),
		stderr: newLineBuffer(),
		done:   make(chan struct{}),
	}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	// If the child leaves a grandchild holding the pipes, don't block forever.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", name, strings.Join(args, " "), err)
	}
	t.Logf("started %s (pid %d): %s", p.name, p.cmd.Process.Pid, strings.Join(args, " "))
	go func() {
		err := p.cmd.Wait()
		p.waitErr = err
		p.exitCode = p.cmd.ProcessState.ExitCode() // -1 if killed by a signal
		p.stdout.close()
		p.stderr.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Logf("%s (pid %d) did not exit 10s after SIGKILL", p.name, p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("--- %s stdout (last %d lines) ---\n%s", p.name, tailLines, p.stdout.tail(tailLines))
			t.Logf("--- %s stderr (last %d lines) ---\n%s", p.name, tailLines, p.stderr.tail(tailLines))
		}
	})
	return p
}

func shortName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (no-op once it has exited).
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if p.Exited() {
		return
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("signal %v to %s: %v", sig, p.name, err)
	}
}

// Kill sends SIGKILL.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 if a signal ended it). On timeout the process is killed and the
// test fails.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exitCode
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s (pid %d) did not exit within %s; killed", p.name, p.cmd.Process.Pid, timeout)
		return -1
	}
}

// Stdout is everything the process has written to stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is everything the process has written to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Lines returns the complete stdout lines written so far (without their
// newlines; a trailing partial line appears only once the process exited).
// Safe to call while the process runs; the slice is a copy.
func (p *Proc) Lines() []string { return p.stdout.lines() }

// WaitForLine waits until a stdout line containing substr appears and returns
// it. The test fails if timeout passes or the process exits first.
func WaitForLine(t testing.TB, p *Proc, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		lines, changed, closed := p.stdout.snapshot()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], substr) {
				return lines[seen]
			}
		}
		if closed {
			t.Fatalf("%s exited (code %d) without printing a line containing %q", p.name, p.exitCode, substr)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s to print a line containing %q", timeout, p.name, substr)
		}
	}
}

// lineBuffer is an io.Writer keeping all output and the complete lines, and
// waking waiters whenever something arrives.
type lineBuffer struct {
	mu      sync.Mutex
	all     bytes.Buffer
	full    []string
	partial []byte
	changed chan struct{} // closed and replaced on every write
	closed  bool
}

func newLineBuffer() *lineBuffer {
	return &lineBuffer{changed: make(chan struct{})}
}

func (b *lineBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all.Write(data)
	b.partial = append(b.partial, data...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.full = append(b.full, strings.TrimSuffix(string(b.partial[:i]), "\r"))
		b.partial = b.partial[i+1:]
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return len(data), nil
}

func (b *lineBuffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.partial) > 0 {
		b.full = append(b.full, string(b.partial))
		b.partial = nil
	}
	b.closed = true
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all.String()
}

func (b *lineBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.full...)
}

// snapshot returns the lines so far, a channel closed on the next change, and
// whether the stream has ended.
func (b *lineBuffer) snapshot() ([]string, <-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.full[:len(b.full):len(b.full)], b.changed, b.closed
}

func (b *lineBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := b.full
	if len(b.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(b.partial))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

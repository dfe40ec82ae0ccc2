package harness

// Helpers for tests that run tributary-agent: waiting on its log (stderr),
// sanitizer reports, thread counts, and a private PostgreSQL server that a
// test may stop and start under a running agent.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StderrLines returns the complete stderr lines written so far.
func (p *Proc) StderrLines() []string { return p.stderr.lines() }

// ExitCode is the exit code once the process has exited (-1 for a signal).
func (p *Proc) ExitCode() int {
	<-p.done
	return p.exitCode
}

// WaitForStderrLine waits until a stderr line containing substr appears
// (searching from the first line) and returns it. The test fails if timeout
// passes or the process exits first.
func WaitForStderrLine(t testing.TB, p *Proc, substr string, timeout time.Duration) string {
	t.Helper()
	return waitLine(t, p, p.stderr, 0, substr, timeout)
}

// WaitForStderrLineAfter is WaitForStderrLine looking only at lines after
// the first 'skip' ones (use len(p.StderrLines()) taken before an action).
func WaitForStderrLineAfter(t testing.TB, p *Proc, skip int, substr string, timeout time.Duration) string {
	t.Helper()
	return waitLine(t, p, p.stderr, skip, substr, timeout)
}

func waitLine(t testing.TB, p *Proc, b *lineBuffer, seen int, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		lines, changed, closed := b.snapshot()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], substr) {
				return lines[seen]
			}
		}
		if closed {
			t.Fatalf("%s exited (code %d) without logging a line containing %q", p.name, p.exitCode, substr)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s to log a line containing %q", timeout, p.name, substr)
		}
	}
}

// SanitizerReport returns the first line of an AddressSanitizer,
// LeakSanitizer or UndefinedBehaviorSanitizer report in the process's
// stderr, or "".
func SanitizerReport(p *Proc) string {
	for _, l := range p.stderr.lines() {
		if strings.Contains(l, "Sanitizer") || strings.Contains(l, "runtime error:") {
			return l
		}
	}
	return ""
}

// ExpectCleanExit waits for the process to exit and fails the test unless
// its exit code is 0 and its stderr holds no sanitizer report (under
// ASan/LSan a leak at exit turns the exit code non-zero too).
func ExpectCleanExit(t testing.TB, p *Proc, timeout time.Duration) {
	t.Helper()
	code := p.Wait(timeout)
	if r := SanitizerReport(p); r != "" {
		t.Errorf("%s (pid %d): sanitizer report: %s\n%s", p.name, p.Pid(), r, p.stderr.tail(60))
	}
	if code != 0 {
		t.Fatalf("%s (pid %d) exited %d, want 0; stderr tail:\n%s", p.name, p.Pid(), code, p.stderr.tail(30))
	}
}

// Threads returns the Threads: count of /proc/<pid>/status, or -1.
func Threads(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Threads:") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, "Threads:")))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// PrivatePG is a PostgreSQL server of the test's own (scripts/pg.sh), which
// the test may stop and start again on the same port with the same options.
type PrivatePG struct {
	t   testing.TB
	Dir string
	URL string // URL of its "tributary" database
}

const pgBin = "/usr/lib/postgresql/15/bin"

// StartPrivatePG starts a throwaway server with scripts/pg.sh (extra
// arguments such as "--durable" are passed on); it is removed at the end of
// the test. Without --durable the server runs with synchronous_commit off:
// an immediate stop (a crash) can then lose transactions it already
// acknowledged.
func StartPrivatePG(t testing.TB, pgshArgs ...string) *PrivatePG {
	t.Helper()
	dir, err := os.MkdirTemp("", "trib-pg-")
	if err != nil {
		t.Fatalf("mkdtemp: %v", err)
	}
	script := filepath.Join(SrcDir(t), "scripts", "pg.sh")
	out, err := exec.Command("bash", append([]string{script, "start", dir}, pgshArgs...)...).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("pg.sh start %s: %v\n%s", dir, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	pg := &PrivatePG{t: t, Dir: dir, URL: lines[len(lines)-1]}
	t.Cleanup(func() {
		_ = exec.Command("bash", script, "stop", dir).Run()
		_ = os.RemoveAll(dir)
	})
	return pg
}

func (pg *PrivatePG) asOwner(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "tributary-pg", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

// Stop shuts the server down (fast mode: sessions are terminated) and keeps
// its data.
func (pg *PrivatePG) Stop() { pg.StopMode("fast") }

// StopMode stops the server with pg_ctl -m mode: "fast" (sessions are
// terminated cleanly) or "immediate" (the server quits at once, like a
// crash; it runs crash recovery on the next start).
func (pg *PrivatePG) StopMode(mode string) {
	pg.t.Helper()
	out, err := pg.asOwner(pgBin+"/pg_ctl", "-D", pg.Dir+"/data", "-m", mode, "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		pg.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Start starts the stopped server again with the options it was first
// started with (recorded by PostgreSQL in postmaster.opts), so on the same
// port.
func (pg *PrivatePG) Start() {
	pg.t.Helper()
	b, err := os.ReadFile(pg.Dir + "/data/postmaster.opts")
	if err != nil {
		pg.t.Fatalf("read postmaster.opts: %v", err)
	}
	opts := strings.TrimSpace(string(b))
	// The first word is the postgres binary; the rest are its arguments,
	// already quoted for a shell (pg_ctl passes -o through /bin/sh).
	if i := strings.IndexByte(opts, ' '); i >= 0 {
		opts = opts[i+1:]
	} else {
		opts = ""
	}
	out, err := pg.asOwner(pgBin+"/pg_ctl", "-D", pg.Dir+"/data", "-l", pg.Dir+"/server.log",
		"-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		pg.t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

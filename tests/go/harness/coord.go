package harness

// Running tributary-coordinator and the CLI's coordinator commands in tests.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Coordinator is a tributary-coordinator process and how to reach it.
type Coordinator struct {
	*Proc
	Listen, Control string
	// CLIArgs are added to every CLI call (e.g. --tls-ca FILE); tls.go.
	CLIArgs   []string
	args, env []string
	t         testing.TB
}

// StartCoordinator runs tributary-coordinator on free loopback ports with
// the extra flags (e.g. --data-dir, --database-url) and environment (e.g.
// TRIBUTARY_SECRET=...), and waits until it logged that it started.
func StartCoordinator(t testing.TB, env []string, extra ...string) *Coordinator {
	t.Helper()
	c := &Coordinator{
		Listen:  fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t)),
		Control: fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t)),
		env:     env,
		t:       t,
	}
	c.args = append([]string{"--listen", c.Listen, "--control", c.Control, "--heartbeat", "500ms"}, extra...)
	c.start(t)
	return c
}

func (c *Coordinator) start(t testing.TB) {
	t.Helper()
	c.Proc = Start(t, Bin(t, "tributary-coordinator"), c.args, c.env)
	WaitForStderrLine(t, c.Proc, "CRD-START", 20*time.Second)
	p := c.Proc
	t.Cleanup(func() {
		if r := SanitizerReport(p); r != "" {
			t.Errorf("tributary-coordinator: sanitizer report: %s", r)
		}
	})
}

// Restart starts a new coordinator process with the same flags (after the
// previous one exited or was killed).
func (c *Coordinator) Restart(t testing.TB) {
	t.Helper()
	c.start(t)
}

// CLI runs `tributary args...` against this coordinator and returns its
// stdout, stderr and exit code.
func (c *Coordinator) CLI(t testing.TB, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	argv := append(append(append([]string{}, args...), "--control", c.Control), c.CLIArgs...)
	cmd := exec.Command(Bin(t, "tributary"), argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("tributary %v did not finish within %s", args, timeout)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// Query runs `tributary <what> --json args...` and decodes the document.
func (c *Coordinator) Query(t testing.TB, what string, args ...string) map[string]any {
	t.Helper()
	out, errs, code := c.CLI(t, 30*time.Second, append([]string{what, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("tributary %s --json: exit %d: %s", what, code, errs)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewBufferString(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("tributary %s --json: not JSON: %v\n%s", what, err, out)
	}
	return doc
}

// Num reads a number at a path of object keys in a decoded document
// (missing -> -1).
func Num(doc map[string]any, path ...string) int64 {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return -1
		}
		cur = m[k]
	}
	switch v := cur.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return int64(f)
	case float64:
		return int64(v)
	}
	return -1
}

// List reads an array of objects at a path.
func List(doc map[string]any, path ...string) []map[string]any {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	arr, _ := cur.([]any)
	var out []map[string]any
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

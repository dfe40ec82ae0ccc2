package integration

// `tributary up --detach` / `tributary down`: the local cluster the README's
// main command builds on, as a user runs it.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestCLIUpDown: `up --detach` on an existing database starts a coordinator
// and two agents (notify + poll clients each) and writes DIR/env; jobs
// inserted on both queues are counted by `wait` through that control
// address; `down` stops every process it started.
func TestCLIUpDown(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewDB(t)
	dir := filepath.Join(t.TempDir(), "cluster")
	tributary := harness.Bin(t, "tributary")
	run := func(timeout time.Duration, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(tributary, args...)
		cmd.Env = append(os.Environ(), env...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(timeout):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("tributary %v: no exit within %s\n%s", args, timeout, out)
		}
		if err != nil {
			t.Fatalf("tributary %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run(60*time.Second, nil, "up", "--detach", "--dir", dir, "--database-url", dbURL, "--agents", "2",
		"--listen", fmt.Sprintf("tcp://127.0.0.1:%d", harness.FreePort(t)),
		"--control", fmt.Sprintf("tcp://127.0.0.1:%d", harness.FreePort(t)))
	t.Cleanup(func() {
		cmd := exec.Command(tributary, "down", "--dir", dir)
		_ = cmd.Run()
	})
	pids := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(coordinator|agent-\d+)\s+pid (\d+)`).FindAllStringSubmatch(out, -1) {
		var pid int
		fmt.Sscan(m[2], &pid)
		pids[m[1]] = pid
	}
	if len(pids) != 3 {
		t.Fatalf("up printed %d processes, want a coordinator and 2 agents:\n%s", len(pids), out)
	}
	envFile, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`TRIBUTARY_CONTROL='([^']+)'`).FindStringSubmatch(string(envFile))
	if m == nil {
		t.Fatalf("no TRIBUTARY_CONTROL in %s:\n%s", filepath.Join(dir, "env"), envFile)
	}
	ctl := []string{"TRIBUTARY_CONTROL=" + m[1]}
	run(30*time.Second, nil, "insert", "--database-url", dbURL, "--count", "300", "--queue", "default", "--quiet")
	run(30*time.Second, nil, "insert", "--database-url", dbURL, "--count", "200", "--queue", "poll", "--quiet")
	run(90*time.Second, ctl, "wait", "--count", "500", "--timeout", "60s", "--quiet")
	status := run(30*time.Second, ctl, "status")
	for _, want := range []string{"node-1", "node-2", "notify", "poll"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	run(60*time.Second, nil, "down", "--dir", dir)
	for name, pid := range pids {
		if err := exec.Command("kill", "-0", fmt.Sprint(pid)).Run(); err == nil {
			t.Errorf("%s (pid %d) still running after down", name, pid)
		}
	}
}

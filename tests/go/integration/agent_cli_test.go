package integration

// The agent as a program: the extension example (a custom job kind), and
// bad input of every sort, which must never crash it.

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestAgentCLICustomKind: build/bin/tributary-agent-example (a program
// adding example.checksum through trib_kind.h) works its own kind next to
// the built-in ones, and fails bad arguments with its own message.
func TestAgentCLICustomKind(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgentBin(t, "tributary-agent-example", dbURL, "ex1", "--queue", "q:5", "--log-level", "debug")
	a.waitReady(t, "q", true)
	ids := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "example.checksum", Args: `{"text":"hello","rounds":1000}`, Queue: "q"},
		harness.JobSpec{Kind: "example.checksum", Args: `{"text":5}`, Queue: "q", MaxAttempts: 1},
		harness.JobSpec{Kind: "example.checksum", Args: `{"text":"x","rounds":0}`, Queue: "q", MaxAttempts: 1},
		harness.JobSpec{Kind: "tributary.noop", Queue: "q"},
	)
	ok := harness.WaitState(t, conn, ids[0], "completed", 10*time.Second)
	if ok.Attempt != 1 || len(ok.Errors) != 0 {
		t.Errorf("checksum job: %s", ok)
	}
	for i, want := range map[int]string{
		1: `example.checksum: field "text" must be a string`,
		2: `example.checksum: field "rounds" must be 1..10000000`,
	} {
		j := harness.WaitState(t, conn, ids[i], "discarded", 10*time.Second)
		checkErr(t, j, 0, 1, want, *j.AttemptedAt)
	}
	harness.WaitState(t, conn, ids[3], "completed", 10*time.Second)
	a.stop(t, 20*time.Second)
	evs := a.events(t)
	if e := eventsFor(evs, ids[0]); len(e) != 1 {
		t.Errorf("checksum job events %+v", e)
	} else {
		checkEvent(t, e[0], "job_completed", "completed")
	}
	if e := eventsFor(evs, ids[1]); len(e) != 1 || e[0].Error == nil || !strings.Contains(*e[0].Error, `"text"`) {
		t.Errorf("bad-args job events %+v", e)
	}
}

// runAgentExpect runs the agent with args to completion and requires exit
// code 'code' and a stderr containing every one of 'want'.
func runAgentExpect(t *testing.T, args []string, code int, want ...string) {
	t.Helper()
	p := harness.Start(t, harness.Bin(t, "tributary-agent"), args, nil)
	got := p.Wait(15 * time.Second)
	stderr := p.Stderr()
	if r := harness.SanitizerReport(p); r != "" {
		t.Errorf("%v: sanitizer report: %s", args, r)
	}
	if got != code {
		t.Errorf("%v: exit %d, want %d; stderr: %s", args, got, code, stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%v: stderr %q lacks %q", args, stderr, w)
		}
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") > 0 && code == 2 {
		t.Errorf("%v: a configuration error should be one line, got:\n%s", args, stderr)
	}
}

// TestAgentCLIBadInput: invalid flags, queue specs, URLs and config files
// exit with code 2 and one clear line (naming file:line for the config);
// a reachable-but-wrong database is no crash either.
func TestAgentCLIBadInput(t *testing.T) {
	t.Parallel()
	url := "postgres://postgres@127.0.0.1:1/none"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--database-url", "foo=bar", "--queue", "q:1"}, []string{"invalid --database-url", `"foo"`}},
		{[]string{"--database-url", "postgres://h:notaport/db", "--queue", "q:1"}, []string{"invalid --database-url", `"notaport"`}},
		{[]string{"--database-url", "postgres://h:99999/db", "--queue", "q:1"}, []string{"invalid --database-url", `"99999"`}},
		{[]string{"--bogus"}, []string{"unknown option '--bogus'"}},
		{[]string{"stray"}, []string{"unexpected argument 'stray'"}},
		{[]string{"--database-url", url}, []string{"no queues to work"}},
		{[]string{"--database-url", url, "--queue"}, []string{"'--queue' needs a value"}},
		{[]string{"--database-url", url, "--queue", "Q:1"}, []string{"queue name 'Q' is invalid"}},
		{[]string{"--database-url", url, "--queue", "q:0"}, []string{"max_workers 0 is out of range 1..10000"}},
		{[]string{"--database-url", url, "--queue", "q:10001"}, []string{"max_workers 10001 is out of range"}},
		{[]string{"--database-url", url, "--queue", "q:abc"}, []string{"MAX_WORKERS must be an integer"}},
		{[]string{"--database-url", url, "--queue", ":5"}, []string{"expected NAME:MAX_WORKERS"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--queue", "q:2"}, []string{"listed twice"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--mode", "fast"}, []string{"expected notify or poll"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--poll-interval", "1x"}, []string{"invalid duration '1x'"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--threads", "0"}, []string{"out of range"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--leader-ttl", "1s", "--leader-elect-interval", "2s"}, []string{"leader.ttl must be longer"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--id", strings.Repeat("x", 101)}, []string{"--id: must be 1..100"}},
		{[]string{"--database-url", url, "--queue", "q:1", "--schema", "bad-schema"}, []string{"schema 'bad-schema' is invalid"}},
	} {
		runAgentExpect(t, tc.args, 2, append([]string{"tributary-agent: "}, tc.want...)...)
	}

	// Config files: every error names file:line.
	dir := t.TempDir()
	for i, tc := range []struct {
		yaml string
		want string
	}{
		{"log_level: info\nbogus: 1\n", ":2: bogus: unknown key"},
		{"clients:\n  - id: a\n    queues: [\"q:1\"]\n    wat: 1\n", ":4: clients[0].wat: unknown key"},
		{"clients:\n  - id: a\n    queues: [\"q:0\"]\n", ":3:14: clients[0].queues[0]: queue 'q': max_workers 0"},
		{"clients:\n  - id: a\n    mode: fast\n    queues: [\"q:1\"]\n", ":3:11: mode: expected notify or poll"},
		{"leader:\n  ttl: 1x\nclients:\n  - id: a\n    queues: [\"q:1\"]\n", ":2:8: leader.ttl: invalid duration"},
		{"clients:\n  - id: a\n    queues: [q:1\n", ":4:1: did not find expected"},
		{"clients:\n  - id: a\n    queues: [\"q:1\"]\n  - id: a\n    queues: [\"q:1\"]\n", "client id 'a' is used twice"},
		{"mode: poll\nclients:\n  - id: a\n    queues: [\"q:1\"]\n", ":1: mode: a client setting"},
	} {
		f := filepath.Join(dir, harness.Fmt("c%d.yaml", i))
		if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		want := f + tc.want
		if !strings.HasPrefix(tc.want, ":") {
			want = tc.want
		}
		runAgentExpect(t, []string{"--config", f}, 2, want)
	}
	runAgentExpect(t, []string{"--config", filepath.Join(dir, "missing.yaml")}, 2, "missing.yaml")
	// Flags and a config's clients are exclusive.
	f := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(f, []byte("clients:\n  - id: a\n    queues: [\"q:1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAgentExpect(t, []string{"--config", f, "--queue", "q:1"}, 2, "use one or the other")
	runAgentExpect(t, []string{"--help"}, 0)

	// Unreachable server, and a database without River's schema: the agent
	// keeps retrying and logging, and still stops cleanly.
	bare := harness.NewDB(t)
	for _, u := range []string{url, bare} {
		a := startAgent(t, u, "", "--queue", "q:1")
		if u == url {
			harness.WaitForStderrLine(t, a.Proc, "database connection failed", 10*time.Second)
		} else {
			harness.WaitForStderrLine(t, a.Proc, "run `tributary migrate up`", 10*time.Second)
		}
		time.Sleep(300 * time.Millisecond)
		a.Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, a.Proc, 10*time.Second)
	}
}

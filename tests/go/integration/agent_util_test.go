package integration

// Shared helpers of the agent tests (agent_*_test.go): starting
// tributary-agent as a real process, stopping it cleanly, and checking
// river_job rows and NDJSON events against River's rules.

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tributary/tests/harness"
)

// agent is a running tributary-agent (or the example agent).
type agent struct {
	*harness.Proc
	ID     string
	Events string // NDJSON events file
}

// startAgent runs build/bin/tributary-agent against dbURL with client id
// 'id' (when not empty), events written to a file of its own, and the extra
// flags (which must include --queue or --config). A sanitizer report in its
// stderr fails the test at the end even if the test killed it.
func startAgent(t *testing.T, dbURL, id string, extra ...string) *agent {
	t.Helper()
	return startAgentBin(t, "tributary-agent", dbURL, id, extra...)
}

var agentSeq atomic.Int64

func startAgentBin(t *testing.T, bin, dbURL, id string, extra ...string) *agent {
	t.Helper()
	name := id
	if name == "" {
		name = fmt.Sprintf("agent%d", agentSeq.Add(1))
	}
	ev := filepath.Join(t.TempDir(), name+".ndjson")
	args := []string{"--database-url", dbURL, "--events-out", ev}
	if id != "" {
		args = append(args, "--id", id)
	}
	args = append(args, extra...)
	p := harness.Start(t, harness.Bin(t, bin), args, nil)
	t.Cleanup(func() {
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("%s (%s): sanitizer report: %s", bin, name, r)
		}
	})
	return &agent{Proc: p, ID: id, Events: ev}
}

// stop sends SIGTERM and requires a clean exit (code 0, no sanitizer
// report) within timeout.
func (a *agent) stop(t *testing.T, timeout time.Duration) {
	t.Helper()
	a.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, a.Proc, timeout)
}

// waitQueueReady waits until the agent logged that its producer for queue
// is ready (river_queue row upserted; needs --log-level debug) and, for a
// notify-mode agent, that its listener is connected (LISTEN issued).
func (a *agent) waitReady(t *testing.T, queue string, notify bool) {
	t.Helper()
	harness.WaitForStderrLine(t, a.Proc, "queue "+queue+" ready", 20*time.Second)
	if notify {
		harness.WaitForStderrLine(t, a.Proc, "PG-CONN: listener: connected", 20*time.Second)
	}
}

// events reads the agent's NDJSON events.
func (a *agent) events(t *testing.T) []harness.Event {
	t.Helper()
	return harness.ReadEvents(t, a.Events)
}

// eventsFor returns the events of one job, in order.
func eventsFor(evs []harness.Event, id int64) []harness.Event {
	var out []harness.Event
	for _, e := range evs {
		if e.JobID == id {
			out = append(out, e)
		}
	}
	return out
}

// checkEvent asserts an event's kind and persisted state and that its
// statistics and times are present and sane (durations non-negative).
func checkEvent(t *testing.T, e harness.Event, kind, state string) {
	t.Helper()
	if e.Event != kind || e.State != state {
		t.Errorf("job %d event %s/%s, want %s/%s", e.JobID, e.Event, e.State, kind, state)
	}
	for name, v := range map[string]*float64{"queue_wait_ms": e.QueueWaitMs, "run_ms": e.RunMs, "complete_ms": e.CompleteMs} {
		if v == nil {
			t.Errorf("job %d %s event: %s missing", e.JobID, kind, name)
		} else if *v < 0 {
			t.Errorf("job %d %s event: %s = %v, negative", e.JobID, kind, name, *v)
		}
	}
	for name, v := range map[string]*string{"created_at": e.CreatedAt, "scheduled_at": e.ScheduledAt, "attempted_at": e.AttemptedAt} {
		if v == nil {
			t.Errorf("job %d %s event: %s missing", e.JobID, kind, name)
		} else if _, err := time.Parse(time.RFC3339Nano, *v); err != nil {
			t.Errorf("job %d %s event: %s %q: %v", e.JobID, kind, name, *v, err)
		}
	}
	finalized := state == "completed" || state == "cancelled" || state == "discarded"
	if finalized != (e.FinalizedAt != nil) {
		t.Errorf("job %d %s event in state %s: finalized_at = %v", e.JobID, kind, state, e.FinalizedAt)
	}
	if e.ClientID == "" || e.Kind == "" || e.Queue == "" {
		t.Errorf("job %d event without client_id/kind/queue: %+v", e.JobID, e)
	}
}

// checkErr asserts one errors element: exactly the keys at, attempt, error
// and trace, the attempt number, the error text, an empty trace, and an
// "at" (the attempt's start) within a second of the attempt's attempted_at.
func checkErr(t *testing.T, j *harness.Job, idx, attempt int, text string, attemptedAt time.Time) {
	t.Helper()
	if idx >= len(j.Errors) {
		t.Fatalf("job %d has %d errors, want element %d: %s", j.ID, len(j.Errors), idx, j)
	}
	e := j.Errors[idx]
	if !reflect.DeepEqual(e.Keys, []string{"at", "attempt", "error", "trace"}) {
		t.Errorf("job %d errors[%d] keys %v, want [at attempt error trace]", j.ID, idx, e.Keys)
	}
	if e.Attempt != attempt {
		t.Errorf("job %d errors[%d].attempt = %d, want %d", j.ID, idx, e.Attempt, attempt)
	}
	if e.Error != text {
		t.Errorf("job %d errors[%d].error = %q, want %q", j.ID, idx, e.Error, text)
	}
	if e.Trace != "" {
		t.Errorf("job %d errors[%d].trace = %q, want empty", j.ID, idx, e.Trace)
	}
	if e.At.IsZero() {
		t.Errorf("job %d errors[%d].at = %q is not RFC 3339", j.ID, idx, e.AtText)
	} else if !attemptedAt.IsZero() && math.Abs(e.At.Sub(attemptedAt).Seconds()) > 1 {
		t.Errorf("job %d errors[%d].at = %s, more than 1s from attempted_at %s", j.ID, idx, e.At, attemptedAt)
	}
}

// within asserts got is within [want-tol, want+tol].
func within(t *testing.T, what string, got, want, tol time.Duration) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s = %s, want %s ± %s", what, got, want, tol)
	}
}

// metaInt reads an integer metadata value (JSON number), or -1.
func metaInt(j *harness.Job, key string) int {
	if f, ok := j.Metadata[key].(float64); ok {
		return int(f)
	}
	return -1
}

// countStates returns state -> count for the jobs of a database.
func countStates(t *testing.T, c *pgx.Conn) map[string]int {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT state::text, count(*) FROM river_job GROUP BY 1`)
	if err != nil {
		t.Fatalf("count states: %v", err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatalf("scan: %v", err)
		}
		m[s] = n
	}
	return m
}

// grepLines returns the lines containing every one of substrs.
func grepLines(lines []string, substrs ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, s := range substrs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

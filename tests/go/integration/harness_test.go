package integration

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

var insertedRE = regexp.MustCompile(`^inserted (\d+) jobs in \S+ \([0-9.]+ jobs/s\)$`)

// runInsert runs riverinsert to completion and returns the job ids it printed.
func runInsert(t *testing.T, dbURL string, args ...string) []int64 {
	t.Helper()
	p := harness.Start(t, harness.Bin(t, "riverinsert"),
		append([]string{"--database-url", dbURL, "--print-ids"}, args...), nil)
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Fatalf("riverinsert %v exited %d\nstderr: %s", args, code, p.Stderr())
	}
	lines := p.Lines()
	if len(lines) == 0 {
		t.Fatalf("riverinsert printed nothing")
	}
	m := insertedRE.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("riverinsert summary line %q does not match %s", lines[len(lines)-1], insertedRE)
	}
	var ids []int64
	for _, l := range lines[:len(lines)-1] {
		id, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("riverinsert printed %q, not an id", l)
		}
		ids = append(ids, id)
	}
	if n, _ := strconv.Atoi(m[1]); n != len(ids) {
		t.Fatalf("riverinsert says %d jobs but printed %d ids", n, len(ids))
	}
	return ids
}

type workerStatus struct {
	Final     bool   `json:"final"`
	T         string `json:"t"`
	ClientID  string `json:"client_id"`
	IsLeader  bool   `json:"is_leader"`
	Completed int64  `json:"completed"`
	Failed    int64  `json:"failed"`
	Error     string `json:"error"`
}

// TestGoHarness exercises the Go helper programs against a River database:
// riverinsert (River's client and raw SQL) and riverworker (a River client
// working the jobs and winning leader election).
func TestGoHarness(t *testing.T) {
	dbURL := harness.NewDB(t)
	harness.MigrateRiver(t, dbURL)
	conn := harness.Connect(t, dbURL)

	// Usage errors exit 2.
	bad := harness.Start(t, harness.Bin(t, "riverinsert"), []string{"--database-url", dbURL, "--priority", "9"}, nil)
	if code := bad.Wait(30 * time.Second); code != 2 {
		t.Fatalf("riverinsert --priority 9: exit %d, want 2", code)
	}

	// Both methods notify <schema>.river_insert in the inserting transaction.
	listener := harness.Connect(t, dbURL)
	if _, err := listener.Exec(context.Background(), `LISTEN "public.river_insert"`); err != nil {
		t.Fatalf("LISTEN: %v", err)
	}

	riverIDs := runInsert(t, dbURL, "--method", "river", "--count", "200", "--batch", "64", "--tags", "harness,river")
	sqlIDs := runInsert(t, dbURL, "--method", "sql", "--count", "200", "--batch", "64", "--tags", "harness,sql")
	if len(riverIDs) != 200 || len(sqlIDs) != 200 {
		t.Fatalf("got %d river ids and %d sql ids, want 200 each", len(riverIDs), len(sqlIDs))
	}
	// Jobs for a queue the worker does not serve, scheduled in the future:
	// they must stay untouched.
	runInsert(t, dbURL, "--method", "sql", "--count", "3", "--queue", "elsewhere", "--scheduled-in", "1h")
	runInsert(t, dbURL, "--method", "river", "--count", "3", "--queue", "elsewhere", "--scheduled-in", "1h")

	// River's client sends {"queue": "default"} (rate-limited to one per
	// 100 ms); the sql method one {"queue":"default"} per transaction (4
	// batches of at most 64). Scheduled inserts send nothing.
	payloads := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		n, err := listener.WaitForNotification(ctx)
		cancel()
		if err != nil {
			break
		}
		payloads[n.Payload]++
	}
	if payloads[`{"queue":"default"}`] != 4 || payloads[`{"queue": "default"}`] < 1 || len(payloads) != 2 {
		t.Fatalf("river_insert notifications %v, want 4 from sql and at least 1 from river, queue default only", payloads)
	}

	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job
		WHERE kind = 'tributary.noop' AND queue = 'default' AND state = 'available'
		  AND args = '{}'::jsonb AND max_attempts = 25 AND priority = 1 AND attempt = 0`); n != 400 {
		t.Fatalf("available noop jobs after insert = %d, want 400", n)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job
		WHERE queue = 'elsewhere' AND state = 'scheduled' AND scheduled_at > now() + interval '50 minutes'`); n != 6 {
		t.Fatalf("scheduled jobs = %d, want 6", n)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE tags = '{harness,sql}'`); n != 200 {
		t.Fatalf("sql-inserted jobs with tags {harness,sql} = %d, want 200", n)
	}

	const clientID = "go-harness-worker"
	w := harness.Start(t, harness.Bin(t, "riverworker"), []string{
		"--database-url", dbURL,
		"--queue", "default:50",
		"--id", clientID,
		"--status-interval", "100ms",
		"--duration", "2m", // bound; the test stops it with SIGTERM well before
	}, nil)

	leaderLine := harness.WaitForLine(t, w, `"is_leader":true`, 30*time.Second)
	t.Logf("leader status: %s", leaderLine)

	harness.Eventually(t, 30*time.Second, "400 completed jobs", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == 400
	})

	w.Signal(syscall.SIGTERM)
	if code := w.Wait(30 * time.Second); code != 0 {
		t.Fatalf("riverworker exited %d after SIGTERM", code)
	}

	var final *workerStatus
	sawLeader := false
	for _, l := range w.Lines() {
		var s workerStatus
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("riverworker printed a non-JSON line %q: %v", l, err)
		}
		if s.ClientID != clientID {
			t.Fatalf("status line with client_id %q, want %q", s.ClientID, clientID)
		}
		if _, err := time.Parse(time.RFC3339Nano, s.T); err != nil {
			t.Fatalf("bad t in %q: %v", l, err)
		}
		sawLeader = sawLeader || s.IsLeader
		if s.Final {
			final = &s
		}
	}
	if !sawLeader {
		t.Fatalf("riverworker never reported is_leader=true")
	}
	if final == nil {
		t.Fatalf("riverworker printed no final line; last lines:\n%s", strings.Join(w.Lines(), "\n"))
	}
	if final.Completed != 400 || final.Failed != 0 || final.Error != "" {
		t.Fatalf("final status %+v, want 400 completed, 0 failed, no error", *final)
	}

	// Every job ran exactly once, by this client, and was finalized.
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job
		WHERE kind = 'tributary.noop' AND queue = 'default' AND state = 'completed'
		  AND attempt = 1 AND attempted_by = ARRAY[$1]::text[] AND finalized_at IS NOT NULL
		  AND coalesce(array_length(errors, 1), 0) = 0`, clientID); n != 400 {
		t.Fatalf("jobs completed exactly once by %s = %d, want 400", clientID, n)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue = 'elsewhere' AND state = 'scheduled' AND attempt = 0`); n != 6 {
		t.Fatalf("untouched scheduled jobs = %d, want 6", n)
	}
	// A clean stop resigns leadership.
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_leader WHERE leader_id = $1`, clientID); n != 0 {
		t.Fatalf("river_leader still names %s after a clean stop", clientID)
	}
}

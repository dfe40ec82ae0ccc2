package integration

// Volume: many clients sharing a queue without double work, and many
// concurrent jobs in one agent without a thread each.

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestAgentLoadManyClients: two agents with two clients each (one notify,
// one poll; YAML --config) work 20,000 tributary.noop jobs inserted in
// batches, partly before and partly while they run. Every job is completed
// exactly once: 20,000 completed rows with attempt 1, and exactly 20,000
// job_completed events with distinct job ids across both agents' streams.
func TestAgentLoadManyClients(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	const total, first, batch = 20000, 5000, 1000

	harness.InsertBulk(t, conn, first, batch, "tributary.noop", "{}", "q")
	var agents []*agent
	clientIDs := map[string]bool{}
	for _, name := range []string{"ma", "mb"} {
		cfg := filepath.Join(t.TempDir(), name+".yaml")
		yaml := `# two clients in one agent: one LISTENs, one polls
log_level: info
leader:
  elect_interval: 500ms
  ttl: 3s
clients:
  - id: ` + name + `-notify
    mode: notify
    queues: ["q:100"]
  - id: ` + name + `-poll
    mode: poll
    poll_interval: 100ms
    queues:
      - {name: q, max_workers: 100}
`
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		clientIDs[name+"-notify"] = true
		clientIDs[name+"-poll"] = true
		agents = append(agents, startAgent(t, dbURL, "", "--config", cfg))
	}
	t0 := time.Now()
	for n := first; n < total; n += batch {
		harness.InsertBulk(t, conn, batch, batch, "tributary.noop", "{}", "q")
		time.Sleep(20 * time.Millisecond)
	}
	harness.Eventually(t, 120*time.Second, "20,000 completed jobs", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == total
	})
	t.Logf("20,000 jobs worked in %s", time.Since(t0))
	time.Sleep(300 * time.Millisecond)
	for _, a := range agents {
		a.stop(t, 30*time.Second)
	}

	if st := countStates(t, conn); st["completed"] != total || len(st) != 1 {
		t.Fatalf("job states %v, want %d completed", st, total)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE attempt = 1
		AND array_length(attempted_by, 1) = 1 AND errors IS NULL AND finalized_at >= attempted_at`); n != total {
		t.Errorf("%d jobs completed at their first attempt by one client, want %d", n, total)
	}
	rows, err := conn.Query(context.Background(), `SELECT attempted_by[1], count(*) FROM river_job GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	perClient := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		perClient[id] = n
		if !clientIDs[id] {
			t.Errorf("job worked by unknown client %q", id)
		}
	}
	rows.Close()
	t.Logf("jobs per client: %v", perClient)

	seen := map[int64]string{}
	events := 0
	for _, a := range agents {
		for _, e := range a.events(t) {
			events++
			if e.Event != "job_completed" || e.State != "completed" || e.Attempt != 1 {
				t.Errorf("unexpected event %+v", e)
				continue
			}
			if e.QueueWaitMs == nil || *e.QueueWaitMs < 0 || e.RunMs == nil || *e.RunMs < 0 || e.CompleteMs == nil || *e.CompleteMs < 0 {
				t.Errorf("event with missing or negative statistics: %+v", e)
			}
			if prev, dup := seen[e.JobID]; dup {
				t.Errorf("job %d completed twice (by %s and %s)", e.JobID, prev, e.ClientID)
			}
			seen[e.JobID] = e.ClientID
		}
	}
	if events != total || len(seen) != total {
		t.Errorf("%d events for %d distinct jobs, want %d job_completed events with distinct ids", events, len(seen), total)
	}
	// Each event was emitted by the client the row names.
	mismatch := 0
	rows, err = conn.Query(context.Background(), `SELECT id, attempted_by[1] FROM river_job`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var by string
		if err := rows.Scan(&id, &by); err != nil {
			t.Fatal(err)
		}
		if seen[id] != by {
			mismatch++
		}
	}
	rows.Close()
	if mismatch != 0 {
		t.Errorf("%d jobs whose event came from another client than attempted_by names", mismatch)
	}
}

// TestAgentLoadConcurrentSleeps: 10,000 tributary.sleep jobs of 3 s run at
// the same time in one agent (--queue q:10000) and all finish within a few
// seconds, while the process keeps a small, bounded number of threads
// (sleeps are timers on the event loop, not threads).
func TestAgentLoadConcurrentSleeps(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	const n = 10000
	a := startAgent(t, dbURL, "sleepy", "--queue", "q:10000", "--log-level", "debug")
	a.waitReady(t, "q", true)

	var mu sync.Mutex
	maxThreads, samples := 0, 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if th := harness.Threads(a.Pid()); th > 0 {
				mu.Lock()
				samples++
				if th > maxThreads {
					maxThreads = th
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	t0 := time.Now()
	harness.InsertBulk(t, conn, n, n, "tributary.sleep", `{"ms":3000}`, "q")
	peak := int64(0)
	harness.Eventually(t, 60*time.Second, "10,000 completed jobs", func() bool {
		if r := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'running'`); r > peak {
			peak = r
		}
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == n
	})
	took := time.Since(t0)
	close(stop)
	<-sampled
	var span float64
	if err := conn.QueryRow(context.Background(), `SELECT extract(epoch FROM max(finalized_at) - min(attempted_at))::float8
		FROM river_job`).Scan(&span); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 x 3 s sleeps: all done %s after the insert; first start to last finish %.2fs; peak running %d; max threads %d (%d samples)",
		took, span, peak, maxThreads, samples)
	if span > 8 {
		t.Errorf("first start to last finish took %.2fs, want a few seconds (all concurrent)", span)
	}
	if peak < n*9/10 {
		t.Errorf("at most %d jobs seen running at once, want nearly %d", peak, n)
	}
	if samples == 0 || maxThreads >= 40 {
		t.Errorf("max threads %d over %d samples, want < 40", maxThreads, samples)
	}
	a.stop(t, 30*time.Second)
	evs := a.events(t)
	if len(evs) != n {
		t.Errorf("%d events, want %d", len(evs), n)
	}
	short, minRun, maxRun := 0, 1e9, 0.0
	for _, e := range evs {
		if e.Event != "job_completed" || e.RunMs == nil || *e.RunMs < 3000 {
			short++
		}
		if e.RunMs != nil {
			minRun = min(minRun, *e.RunMs)
			maxRun = max(maxRun, *e.RunMs)
		}
	}
	t.Logf("run_ms %.3f .. %.3f", minRun, maxRun)
	if short != 0 {
		t.Errorf("%d events not job_completed after a >= 3 s run", short)
	}
}

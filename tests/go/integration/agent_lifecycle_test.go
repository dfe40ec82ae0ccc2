package integration

// Process lifecycle: graceful stop with running jobs (River's
// job_interrupted, river-facts §2.7), and a PostgreSQL outage under a
// running agent.

import (
	"encoding/json"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestAgentLifecycleSigterm: SIGTERM with running jobs. Jobs that finish
// within --shutdown-grace complete normally; the others are interrupted:
// back to 'available' with the attempt given back and no error, reported
// as job_interrupted. The process resigns leadership and exits 0 promptly.
func TestAgentLifecycleSigterm(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgent(t, dbURL, "life1", "--queue", "q:10", "--shutdown-grace", "1s", "--log-level", "debug")
	a.waitReady(t, "q", true)
	harness.Eventually(t, 5*time.Second, "leadership", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_leader WHERE leader_id = 'life1'`) == 1
	})

	long := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":30000}`, Queue: "q"},
		harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":30000}`, Queue: "q"},
		harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":30000}`, Queue: "q", MaxAttempts: 1},
		// A blocking kind on a worker thread is interrupted the same way.
		harness.JobSpec{Kind: "tributary.cpu", Args: `{"ms":30000}`, Queue: "q"})
	short := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":600}`, Queue: "q"},
		harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":600}`, Queue: "q"})
	for _, id := range append(append([]int64{}, long...), short...) {
		harness.WaitState(t, conn, id, "running", 5*time.Second)
	}
	// A long job on its second attempt: interrupted, it goes back to 1.
	second := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":30000}`, Queue: "q",
		Errors: []string{`{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"earlier","trace":""}`}, Attempt: 1})[0]
	harness.WaitState(t, conn, second, "running", 5*time.Second)

	t0 := time.Now()
	a.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, a.Proc, 10*time.Second)
	took := time.Since(t0)
	t.Logf("exited %s after SIGTERM", took)
	if took > 3*time.Second {
		t.Errorf("stop took %s with a 1s grace", took)
	}

	for _, id := range short {
		j := harness.GetJob(t, conn, id)
		if j.State != "completed" || j.Attempt != 1 || len(j.Errors) != 0 || j.FinalizedAt == nil {
			t.Errorf("job finishing within the grace: %s", j)
		}
	}
	for _, id := range append(long, second) {
		j := harness.GetJob(t, conn, id)
		wantAttempt, wantErrs := 0, 0
		if id == second {
			wantAttempt, wantErrs = 1, 1
		}
		if j.State != "available" || j.Attempt != wantAttempt || len(j.Errors) != wantErrs || j.FinalizedAt != nil ||
			j.AttemptedAt == nil || j.ScheduledAt.After(j.DBNow) {
			t.Errorf("interrupted job (want available, attempt %d, %d errors, due now): %s", wantAttempt, wantErrs, j)
		}
		if j.ScheduledAt.Before(t0.Add(-time.Second)) {
			t.Errorf("interrupted job %d: scheduled_at %s not reset to the interruption", id, j.ScheduledAt)
		}
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_leader`); n != 0 {
		t.Errorf("river_leader still has %d row(s) after a clean stop", n)
	}
	evs := a.events(t)
	for _, id := range short {
		e := eventsFor(evs, id)
		if len(e) != 1 {
			t.Fatalf("job %d events %+v", id, e)
		}
		checkEvent(t, e[0], "job_completed", "completed")
	}
	for _, id := range append(long, second) {
		e := eventsFor(evs, id)
		if len(e) != 1 {
			t.Fatalf("job %d events %+v", id, e)
		}
		checkEvent(t, e[0], "job_interrupted", "available")
		if e[0].Error != nil {
			t.Errorf("job_interrupted event with an error: %q", *e[0].Error)
		}
		if *e[0].RunMs < 900 {
			t.Errorf("interrupted job ran %v ms, want about the 1 s grace", *e[0].RunMs)
		}
	}
	if l := grepLines(a.StderrLines(), "AGT-STOP", "interrupting 5 running job(s)"); len(l) != 1 {
		t.Errorf("expected one 'interrupting 5 running job(s)' log line, got %q", l)
	}
}

var pgConnLineRE = regexp.MustCompile(`PG-CONN: (\S+): database connection (lost|failed)`)

// TestAgentLifecyclePostgresOutage: the database server is stopped and
// started again under a running agent while jobs flow. After recovery every
// job is completed exactly once and none is left running; the agent logged
// the loss and the recovery, rate-limited.
//
// Two kinds of outage: a fast shutdown (sessions terminated cleanly) and an
// immediate one (the server quits like a crash: statements in flight get no
// answer, whether or not they committed).
func TestAgentLifecyclePostgresOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"fast", "immediate"} {
		mode := mode
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testOutage(t, mode)
		})
	}
}

func testOutage(t *testing.T, mode string) {
	// Durable: an immediate stop must not lose commits the agent was told
	// about (the default test server acknowledges before flushing).
	pg := harness.StartPrivatePG(t, "--durable")
	dbURL := pg.URL
	harness.MigrateRiver(t, dbURL)
	conn := harness.Connect(t, dbURL)

	const before, after = 3000, 500
	harness.InsertBulk(t, conn, before, 1000, "tributary.sleep", `{"ms":100}`, "q")
	// The rescuer recovers a job whose fetch committed but whose result the
	// outage swallowed ('running' with nobody working it).
	a := startAgent(t, dbURL, "out1", "--queue", "q:50", "--poll-interval", "500ms",
		"--job-timeout", "2s", "--rescue-stuck-jobs-after", "4s", "--rescuer-interval", "1s",
		"--scheduler-interval", "500ms", "--leader-elect-interval", "1s", "--leader-ttl", "5s")
	harness.Eventually(t, 10*time.Second, "jobs flowing", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) > 300
	})
	conn.Close(t.Context())

	t.Logf("stopping PostgreSQL (%s)", mode)
	pg.StopMode(mode)
	down := time.Now()
	time.Sleep(3 * time.Second)
	pg.Start()
	t.Logf("PostgreSQL back after %s", time.Since(down))
	conn = harness.Connect(t, dbURL)

	// New jobs after the recovery: found through the re-established LISTEN
	// (on the agent's listener session, application_name 'tributary-agent';
	// its clients' sessions are 'tributary-agent:<client id>').
	harness.Eventually(t, 15*time.Second, "the agent reconnected", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'tributary-agent' AND query LIKE '%LISTEN%'`) == 1
	})
	harness.InsertBulk(t, conn, after, 100, "tributary.sleep", `{"ms":100}`, "q")

	harness.Eventually(t, 90*time.Second, "every job completed", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == before+after
	})
	time.Sleep(500 * time.Millisecond)
	a.stop(t, 30*time.Second)

	st := countStates(t, conn)
	if st["completed"] != before+after || len(st) != 1 {
		t.Fatalf("job states after recovery %v, want %d completed only", st, before+after)
	}
	rescued := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE attempt > 1`)
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE attempt > 1
		AND NOT (errors[1] ->> 'error' = 'Stuck job rescued by JobRescuer' AND array_length(errors, 1) = 1)`); n != 0 {
		t.Errorf("%d jobs ran more than once for a reason other than a rescue", n)
	}
	t.Logf("%d job(s) rescued after the outage", rescued)

	// Events: exactly one job_completed per job.
	seen := map[int64]int{}
	for _, e := range a.events(t) {
		if e.Event == "job_completed" {
			seen[e.JobID]++
		}
	}
	dups := 0
	evs := a.events(t)
	for id, n := range seen {
		if n != 1 {
			dups++
			if dups <= 3 {
				b, _ := json.Marshal(eventsFor(evs, id))
				t.Logf("job %d: events %s; row %s", id, b, harness.GetJob(t, conn, id))
			}
		}
	}
	if len(seen) != before+after || dups != 0 {
		t.Errorf("job_completed events for %d jobs (%d with more than one), want %d jobs once each", len(seen), dups, before+after)
	}

	// The log: loss and recovery per connection, rate-limited.
	lines := a.StderrLines()
	perConn := map[string]int{}
	for _, l := range lines {
		if m := pgConnLineRE.FindStringSubmatch(l); m != nil {
			perConn[m[1]]++
		}
	}
	again := grepLines(lines, "PG-CONN", "connected again")
	t.Logf("connection complaints per connection: %v; %d recoveries logged", perConn, len(again))
	if len(perConn) == 0 || len(again) == 0 {
		t.Errorf("the outage and the recovery were not logged:\n%s", strings.Join(grepLines(lines, "PG-CONN"), "\n"))
	}
	for name, n := range perConn {
		// ~3 s down with reconnects every 0.1-5 s: a complaint at most at 0,
		// 1 and 3 s (doubling suppression).
		if n > 4 {
			t.Errorf("connection %s complained %d times in a 3 s outage: not rate-limited", name, n)
		}
		if len(grepLines(again, name+": connected again")) != 1 {
			t.Errorf("connection %s: recovery logged %d times, want once", name, len(grepLines(again, name+": connected again")))
		}
	}
}

// TestAgentLifecycleSecondSignal: a second SIGTERM ends the grace period at
// once: running jobs are interrupted and the agent exits 0.
func TestAgentLifecycleSecondSignal(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgent(t, dbURL, "sig2", "--queue", "q:2", "--shutdown-grace", "60s")
	id := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":60000}`, Queue: "q"})[0]
	harness.WaitState(t, conn, id, "running", 10*time.Second)
	a.Signal(syscall.SIGTERM)
	harness.WaitForStderrLine(t, a.Proc, "grace 60.0 s", 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if a.Exited() {
		t.Fatalf("exited during the grace period")
	}
	t0 := time.Now()
	a.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, a.Proc, 10*time.Second)
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("exit took %s after the second SIGTERM", took)
	}
	if j := harness.GetJob(t, conn, id); j.State != "available" || j.Attempt != 0 || len(j.Errors) != 0 {
		t.Errorf("interrupted job: %s", j)
	}
	if e := eventsFor(a.events(t), id); len(e) != 1 || e[0].Event != "job_interrupted" {
		t.Errorf("events %+v", e)
	}
}

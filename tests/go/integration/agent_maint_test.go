package integration

// Leader-only maintenance (river-facts §6): scheduler, rescuer, cleaner and
// queue cleaner, run by an agent that won the election, with short
// intervals.

import (
	"context"
	"testing"
	"time"

	"tributary/tests/harness"
)

var fastLeader = []string{"--leader-elect-interval", "500ms", "--leader-ttl", "3s"}

func waitLeader(t *testing.T, dbURL, id string) {
	t.Helper()
	c := harness.Connect(t, dbURL)
	harness.Eventually(t, 5*time.Second, id+" leading", func() bool {
		return harness.QueryInt(t, c, `SELECT count(*) FROM river_leader WHERE leader_id = $1`, id) == 1
	})
}

// TestAgentMaintSchedulerRescuer: the scheduler makes a due 'scheduled' job
// available (it then runs); the rescuer sends jobs left 'running' past
// --rescue-stuck-jobs-after to 'retryable' with River's error and
// river:rescue_count, discards a stuck job of a kind the agent cannot run,
// and cancels a stuck job whose cancellation was requested.
func TestAgentMaintSchedulerRescuer(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	hourAgo := time.Now().Add(-time.Hour)
	in2s := time.Now().Add(2 * time.Second)
	prev := func(n int) []string {
		var e []string
		for i := 1; i <= n; i++ {
			e = append(e, harness.Fmt(`{"at":"2026-01-01T00:00:0%dZ","attempt":%d,"error":"earlier","trace":""}`, i, i))
		}
		return e
	}
	stuck := func(kind string, attempt, maxAttempts, nerr int, meta string) harness.JobSpec {
		return harness.JobSpec{Kind: kind, Args: `{"ms":10}`, Queue: "q", State: "running", Attempt: attempt,
			MaxAttempts: maxAttempts, AttemptedAt: &hourAgo, AttemptedBy: []string{"gone"}, Errors: prev(nerr), Metadata: meta}
	}
	ids := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "tributary.noop", Queue: "q", State: "scheduled", ScheduledAt: &in2s}, // 0
		stuck("tributary.sleep", 3, 25, 2, ""),                                                      // 1 -> retryable, 3^4 = 81 s
		stuck("tributary.sleep", 1, 25, 0, `{"river:rescue_count": 1}`),                             // 2 -> retryable 1 s, runs
		stuck("no.such.kind", 1, 25, 0, ""),                                                         // 3 -> discarded
		stuck("tributary.sleep", 5, 5, 4, ""),                                                       // 4 -> discarded (attempts used)
		stuck("tributary.sleep", 1, 25, 0, `{"cancel_attempted_at": "x"}`),                          // 5 -> cancelled
	)
	// A job running for less than the threshold is left alone.
	recent := time.Now()
	fresh := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.sleep", Args: `{}`, Queue: "q",
		State: "running", Attempt: 1, AttemptedAt: &recent})[0]
	time.Sleep(10 * time.Millisecond)

	started := time.Now()
	a := startAgent(t, dbURL, "maint1", append([]string{"--queue", "q:5", "--poll-interval", "200ms",
		"--scheduler-interval", "500ms", "--rescuer-interval", "500ms", "--rescue-stuck-jobs-after", "10s",
		"--job-timeout", "1s"}, fastLeader...)...)
	waitLeader(t, dbURL, "maint1")

	// Scheduler.
	s := harness.WaitState(t, conn, ids[0], "completed", 6*time.Second)
	if s.Attempt != 1 || s.AttemptedAt.Before(s.ScheduledAt) {
		t.Errorf("scheduled job: %s", s)
	}
	t.Logf("scheduled job ran %s after it was due", s.AttemptedAt.Sub(s.ScheduledAt))
	if d := s.AttemptedAt.Sub(s.ScheduledAt); d > 1500*time.Millisecond {
		t.Errorf("scheduled job started %s after it was due, want within ~ a scheduler interval", d)
	}

	// Rescuer.
	const rescueErr = "Stuck job rescued by JobRescuer"
	r1 := harness.WaitJob(t, conn, ids[1], 5*time.Second, "rescued", func(j *harness.Job) bool { return j.State != "running" })
	if r1.State != "retryable" || r1.Attempt != 3 || len(r1.Errors) != 3 || metaInt(r1, "river:rescue_count") != 1 || r1.FinalizedAt != nil {
		t.Errorf("rescued job: %s", r1)
	}
	checkErr(t, r1, 2, 3, rescueErr, time.Time{})
	if at := r1.Errors[2].At; at.Before(started) || at.After(r1.DBNow) {
		t.Errorf("rescue error at %s, not between the agent's start (%s) and now", at, started)
	}
	within(t, "rescued job's retry (3^4 s)", r1.ScheduledAt.Sub(r1.Errors[2].At), 81*time.Second, 8100*time.Millisecond+100*time.Millisecond)

	r2 := harness.WaitState(t, conn, ids[2], "completed", 8*time.Second)
	if r2.Attempt != 2 || len(r2.Errors) != 1 || metaInt(r2, "river:rescue_count") != 2 || r2.AttemptedBy[len(r2.AttemptedBy)-1] != "maint1" {
		t.Errorf("rescued, then worked: %s", r2)
	}
	checkErr(t, r2, 0, 1, rescueErr, time.Time{})

	r3 := harness.WaitJob(t, conn, ids[3], 5*time.Second, "rescued", func(j *harness.Job) bool { return j.State != "running" })
	if r3.State != "discarded" || r3.FinalizedAt == nil || len(r3.Errors) != 1 || metaInt(r3, "river:rescue_count") != 1 {
		t.Errorf("stuck job of an unknown kind (River's rescuer discards it): %s", r3)
	}
	checkErr(t, r3, 0, 1, rescueErr, time.Time{})
	r4 := harness.WaitJob(t, conn, ids[4], 5*time.Second, "rescued", func(j *harness.Job) bool { return j.State != "running" })
	if r4.State != "discarded" || r4.FinalizedAt == nil || len(r4.Errors) != 5 {
		t.Errorf("stuck job out of attempts: %s", r4)
	}
	r5 := harness.WaitJob(t, conn, ids[5], 5*time.Second, "rescued", func(j *harness.Job) bool { return j.State != "running" })
	if r5.State != "cancelled" || r5.FinalizedAt == nil || len(r5.Errors) != 1 {
		t.Errorf("stuck job with a cancel request: %s", r5)
	}
	if f := harness.GetJob(t, conn, fresh); f.State != "running" || len(f.Errors) != 0 {
		t.Errorf("a job running for less than the threshold was touched: %s", f)
	}
	a.stop(t, 20*time.Second)
	// Rescues emit no events (River); only the jobs this agent worked do.
	for _, e := range a.events(t) {
		if e.JobID != ids[0] && e.JobID != ids[2] {
			t.Errorf("unexpected event %+v", e)
		}
	}
}

// TestAgentMaintCleaners: the cleaner deletes finalized jobs past their
// retention (completed: --completed-retention 1s; cancelled and discarded
// keep River's 24 h / 7 d), the queue cleaner river_queue rows not updated
// within --queue-retention.
func TestAgentMaintCleaners(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	hourAgo := time.Now().Add(-time.Hour)
	dayAgo := time.Now().Add(-25 * time.Hour)
	fin := func(state string, at *time.Time) harness.JobSpec {
		return harness.JobSpec{Kind: "tributary.noop", Queue: "q", State: state, Attempt: 1, AttemptedAt: at, FinalizedAt: at}
	}
	ids := harness.InsertJobs(t, conn,
		fin("completed", &hourAgo), // 0 deleted (1 s retention)
		fin("cancelled", &hourAgo), // 1 kept (24 h)
		fin("cancelled", &dayAgo),  // 2 deleted
		fin("discarded", &dayAgo),  // 3 kept (7 d)
		harness.JobSpec{Kind: "tributary.noop", Queue: "q", State: "retryable", Attempt: 1, AttemptedAt: &dayAgo, ScheduledAt: &hourAgo}, // 4 not finalized: runs
	)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO river_queue (name, created_at, updated_at)
		VALUES ('oldq', now() - interval '2 hours', now() - interval '1 hour'),
		       ('newq', now(), now())`); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dbURL, "clean1", append([]string{"--queue", "q:5", "--poll-interval", "200ms",
		"--scheduler-interval", "500ms", "--cleaner-interval", "500ms", "--completed-retention", "1s",
		"--queue-cleaner-interval", "500ms", "--queue-retention", "30m"}, fastLeader...)...)
	waitLeader(t, dbURL, "clean1")

	harness.Eventually(t, 5*time.Second, "old jobs cleaned", func() bool {
		return !harness.JobExists(t, conn, ids[0]) && !harness.JobExists(t, conn, ids[2])
	})
	for _, i := range []int{1, 3} {
		if !harness.JobExists(t, conn, ids[i]) {
			t.Errorf("job #%d deleted before its retention", i)
		}
	}
	// The retryable job runs; once completed it is deleted a second later.
	j := harness.WaitState(t, conn, ids[4], "completed", 5*time.Second)
	t.Logf("completed at %s", j.FinalizedAt)
	harness.Eventually(t, 5*time.Second, "the new completed job cleaned after 1 s", func() bool {
		return !harness.JobExists(t, conn, ids[4])
	})
	if d := time.Since(*j.FinalizedAt); d < time.Second {
		t.Errorf("completed job deleted %s after finalizing, before its 1 s retention", d)
	}

	harness.Eventually(t, 5*time.Second, "idle river_queue row deleted", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_queue WHERE name = 'oldq'`) == 0
	})
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_queue WHERE name IN ('q', 'newq')`); n != 2 {
		t.Errorf("queue cleaner deleted fresh river_queue rows (%d of q, newq left)", n)
	}
	a.stop(t, 20*time.Second)
}

package integration

// Job outcomes of tributary-agent against River's rules (river-facts §2, §3):
// the row written back for every transition, and the NDJSON event of each.

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestAgentOutcomesInsertPaths: jobs inserted as raw SQL (INSERT + pg_notify
// in one transaction) and through River's Go client (InsertMany and the COPY
// path InsertManyFast), before and after the agent starts, are all worked
// and completed exactly once.
func TestAgentOutcomesInsertPaths(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)

	sqlJobs := func(n int) []harness.JobSpec {
		js := make([]harness.JobSpec, n)
		for i := range js {
			js[i] = harness.JobSpec{Kind: "tributary.noop", Queue: "q"}
		}
		return js
	}
	ids := map[int64]string{}
	add := func(how string, got []int64) {
		for _, id := range got {
			ids[id] = how
		}
	}
	// Before the agent runs: its first fetch finds them.
	add("sql-before", harness.InsertJobs(t, conn, sqlJobs(50)...))
	add("river-before", runInsert(t, dbURL, "--method", "river", "--queue", "q", "--count", "50", "--batch", "20"))

	a := startAgent(t, dbURL, "ins1", "--queue", "q:10", "--log-level", "debug")
	a.waitReady(t, "q", true)

	// While it runs: found through the insert notifications.
	add("sql-after", harness.InsertJobs(t, conn, sqlJobs(50)...))
	add("river-after", runInsert(t, dbURL, "--method", "river", "--queue", "q", "--count", "50", "--batch", "20"))
	cp := harness.Start(t, harness.Bin(t, "riverinsert"), []string{"--database-url", dbURL,
		"--method", "river-copy", "--queue", "q", "--count", "50", "--batch", "25"}, nil)
	if code := cp.Wait(60 * time.Second); code != 0 {
		t.Fatalf("riverinsert river-copy exited %d: %s", code, cp.Stderr())
	}
	const total = 250

	harness.Eventually(t, 30*time.Second, "250 completed jobs", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == total
	})
	// Give a duplicate execution a chance to show, then stop.
	time.Sleep(300 * time.Millisecond)
	a.stop(t, 20*time.Second)

	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job`); n != total {
		t.Fatalf("%d jobs in river_job, want %d", n, total)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job
		WHERE state = 'completed' AND attempt = 1 AND attempted_by = '{ins1}'
		  AND errors IS NULL AND finalized_at IS NOT NULL AND finalized_at >= attempted_at
		  AND attempted_at >= created_at AND metadata = '{}'::jsonb`); n != total {
		rows, _ := conn.Query(context.Background(), `SELECT id, attempt, attempted_by, created_at, attempted_at,
			finalized_at FROM river_job WHERE NOT (finalized_at >= attempted_at AND attempted_at >= created_at) LIMIT 5`)
		for rows.Next() {
			var id int64
			var attempt int
			var by []string
			var c, a, f time.Time
			_ = rows.Scan(&id, &attempt, &by, &c, &a, &f)
			t.Logf("job %d (%s): attempt %d by %v created %s attempted %s finalized %s",
				id, ids[id], attempt, by, c.Format(time.RFC3339Nano), a.Format(time.RFC3339Nano), f.Format(time.RFC3339Nano))
		}
		rows.Close()
		t.Fatalf("%d jobs completed exactly once by ins1 with a clean row, want %d", n, total)
	}

	evs := a.events(t)
	seen := map[int64]int{}
	for _, e := range evs {
		checkEvent(t, e, "job_completed", "completed")
		if e.ClientID != "ins1" || e.Attempt != 1 || e.Queue != "q" || e.Kind != "tributary.noop" {
			t.Errorf("unexpected event %+v", e)
		}
		seen[e.JobID]++
	}
	if len(evs) != total || len(seen) != total {
		t.Fatalf("%d events for %d distinct jobs, want %d job_completed events, one per job", len(evs), len(seen), total)
	}
	for id, how := range ids {
		if seen[id] != 1 {
			t.Errorf("job %d (%s): %d job_completed events", id, how, seen[id])
		}
	}
}

// TestAgentOutcomesTransitions: one agent (notify, --job-timeout 1s) works
// one job of each outcome; every resulting row and event is checked.
func TestAgentOutcomesTransitions(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgent(t, dbURL, "out1", "--queue", "q:20", "--poll-interval", "200ms",
		"--job-timeout", "1s", "--log-level", "debug")
	a.waitReady(t, "q", true)

	j := func(kind, args string, maxAttempts int) harness.JobSpec {
		return harness.JobSpec{Kind: kind, Args: args, Queue: "q", MaxAttempts: maxAttempts}
	}
	ids := harness.InsertJobs(t, conn,
		j("tributary.noop", `{}`, 25),                              // 0 completed
		j("tributary.fail", `{"message":"boom"}`, 3),               // 1 retried twice
		j("tributary.fail", `{"message":"boom"}`, 2),               // 2 retried, then discarded
		j("tributary.fail", `{}`, 1),                               // 3 discarded at once
		j("tributary.snooze", `{"ms":30000,"times":1}`, 25),        // 4 snoozed > 5 s
		j("tributary.snooze", `{"ms":3000,"times":1}`, 25),         // 5 snoozed <= 5 s
		j("tributary.sleep", `{"ms":5000}`, 2),                     // 6 timed out twice
		j("no.such.kind", `{}`, 25),                                // 7 unknown kind
		j("tributary.sleep", `{"ms":"x"}`, 1),                      // 8 bad args
		j("tributary.cpu", `{"ms":200}`, 25),                       // 9 completed on a thread
		j("tributary.sink", `{"rows":3}`, 1),                       // 10 no sink configured
		j("tributary.fail", `{"probability":0,"message":"x"}`, 25), // 11 p=0: completes
		j("tributary.cpu", `{"ms":5000}`, 1),                       // 12 blocking kind timed out
	)
	const boom = "boom"
	const unknownKind = "job kind is not registered in the client's Workers bundle: no.such.kind"

	// Intermediate states first, while they last (the 3 s snooze and the
	// first 1 s retry start together). The rest is checked from the final
	// rows and from the events, which carry each attempt's state.
	s5 := harness.WaitJob(t, conn, ids[5], 10*time.Second, "snooze", func(j *harness.Job) bool { return metaInt(j, "snoozes") == 1 })
	if s5.State != "available" || s5.Attempt != 0 || len(s5.Errors) != 0 || s5.FinalizedAt != nil {
		t.Errorf("snoozed 3s (River: a snooze <= 5 s goes straight to 'available'): %s", s5)
	}
	within(t, "3s snooze: scheduled_at - attempted_at", s5.ScheduledAt.Sub(*s5.AttemptedAt), 3*time.Second, 500*time.Millisecond)
	if !s5.ScheduledAt.After(s5.DBNow) {
		t.Errorf("3s snooze: scheduled_at %s not in the future (now %s)", s5.ScheduledAt, s5.DBNow)
	}
	if r1 := harness.WaitJob(t, conn, ids[1], 10*time.Second, "first error", func(j *harness.Job) bool { return len(j.Errors) >= 1 }); len(r1.Errors) == 1 {
		// River: a retry <= 5 s away skips 'retryable'.
		if r1.State != "available" || r1.Attempt != 1 || r1.FinalizedAt != nil || !r1.ScheduledAt.After(r1.DBNow) {
			t.Errorf("after the first error: %s", r1)
		}
	} else {
		t.Logf("missed the 1 s window of job %d's first retry; checked through its event", ids[1])
	}

	// 0: completed.
	jc := harness.WaitState(t, conn, ids[0], "completed", 10*time.Second)
	if jc.Attempt != 1 || jc.FinalizedAt == nil || jc.FinalizedAt.Before(*jc.AttemptedAt) ||
		len(jc.Errors) != 0 || len(jc.Metadata) != 0 || strings.Join(jc.AttemptedBy, ",") != "out1" {
		t.Errorf("completed job row: %s", jc)
	}
	// 1: two errors, now 'retryable' ~16 s out.
	r2 := harness.WaitJob(t, conn, ids[1], 10*time.Second, "second error", func(j *harness.Job) bool { return len(j.Errors) >= 2 })
	if r2.State != "retryable" || r2.Attempt != 2 || r2.FinalizedAt != nil || len(r2.Errors) != 2 {
		t.Errorf("after the second error: %s", r2)
	}
	within(t, "second retry delay (scheduled_at - errors[1].at)", r2.ScheduledAt.Sub(r2.Errors[1].At), 16*time.Second, 1600*time.Millisecond+50*time.Millisecond)
	// 2, 3: discarded once attempt >= max_attempts.
	d2 := harness.WaitState(t, conn, ids[2], "discarded", 10*time.Second)
	if d2.Attempt != 2 || d2.FinalizedAt == nil || len(d2.Errors) != 2 {
		t.Errorf("discarded after 2 attempts: %s", d2)
	}
	d1 := harness.WaitState(t, conn, ids[3], "discarded", 10*time.Second)
	if d1.Attempt != 1 || d1.FinalizedAt == nil || len(d1.Errors) != 1 {
		t.Errorf("discarded after 1 attempt: %s", d1)
	}
	// 4: snooze 30 s: 'scheduled', attempt given back, snoozes counted, no
	// error.
	s4 := harness.WaitJob(t, conn, ids[4], 10*time.Second, "snooze", func(j *harness.Job) bool { return metaInt(j, "snoozes") == 1 })
	if s4.State != "scheduled" || s4.Attempt != 0 || len(s4.Errors) != 0 || s4.FinalizedAt != nil {
		t.Errorf("snoozed 30s: %s", s4)
	}
	within(t, "30s snooze: scheduled_at - attempted_at", s4.ScheduledAt.Sub(*s4.AttemptedAt), 30*time.Second, 500*time.Millisecond)
	// 5: ran again after its snooze and completed; the count stays.
	s5b := harness.WaitState(t, conn, ids[5], "completed", 10*time.Second)
	if s5b.Attempt != 1 || metaInt(s5b, "snoozes") != 1 || len(s5b.Errors) != 0 || s5b.AttemptedAt.Before(s5.ScheduledAt) {
		t.Errorf("snoozed job after completing: %s", s5b)
	}
	// 6: timed out twice ("job timed out after 1s"), then discarded.
	t6 := harness.WaitState(t, conn, ids[6], "discarded", 10*time.Second)
	if t6.Attempt != 2 || len(t6.Errors) != 2 {
		t.Errorf("timed-out job: %s", t6)
	}
	// 7: unknown kind: River's own error text, normal retry path.
	u7 := harness.WaitJob(t, conn, ids[7], 10*time.Second, "second error", func(j *harness.Job) bool { return len(j.Errors) >= 2 })
	if u7.State != "retryable" || u7.Attempt != 2 {
		t.Errorf("unknown kind after two attempts: %s", u7)
	}
	// 8: bad args: a clear error naming the field.
	b8 := harness.WaitState(t, conn, ids[8], "discarded", 10*time.Second)
	if len(b8.Errors) != 1 || !strings.HasPrefix(b8.Errors[0].Error, "tributary.sleep: invalid args:") ||
		!strings.Contains(b8.Errors[0].Error, `"ms"`) {
		t.Errorf("bad args error: %s", b8)
	}
	// 9: tributary.cpu completes.
	c9 := harness.WaitState(t, conn, ids[9], "completed", 10*time.Second)
	if c9.Attempt != 1 || len(c9.Errors) != 0 {
		t.Errorf("cpu job: %s", c9)
	}
	// 10: tributary.sink without a sink.
	k10 := harness.WaitState(t, conn, ids[10], "discarded", 10*time.Second)
	harness.WaitState(t, conn, ids[11], "completed", 10*time.Second)
	// 12: a blocking (thread) kind sees the timeout too.
	c12 := harness.WaitState(t, conn, ids[12], "discarded", 10*time.Second)

	// The agent is still running after the bad arguments: a new job works.
	late := harness.InsertJobs(t, conn, j("tributary.noop", `{}`, 25))
	harness.WaitState(t, conn, late[0], "completed", 5*time.Second)
	if a.Exited() {
		t.Fatalf("agent exited")
	}
	a.stop(t, 20*time.Second)

	// Events: one per write-back, following the persisted state; with
	// them, each errors element is checked against its attempt.
	evs := a.events(t)
	type ev struct{ kind, state, err string }
	sinkErr := "tributary.sink: no sink configured (set sink.database_url or --sink-url)"
	want := map[int]([]ev){
		0:  {{"job_completed", "completed", ""}},
		1:  {{"job_failed", "available", boom}, {"job_failed", "retryable", boom}},
		2:  {{"job_failed", "available", boom}, {"job_failed", "discarded", boom}},
		3:  {{"job_failed", "discarded", "tributary.fail: simulated failure"}},
		4:  {{"job_snoozed", "scheduled", ""}},
		5:  {{"job_snoozed", "available", ""}, {"job_completed", "completed", ""}},
		6:  {{"job_failed", "available", "job timed out after 1s"}, {"job_failed", "discarded", "job timed out after 1s"}},
		7:  {{"job_failed", "available", unknownKind}, {"job_failed", "retryable", unknownKind}},
		8:  {{"job_failed", "discarded", b8.Errors[0].Error}},
		9:  {{"job_completed", "completed", ""}},
		10: {{"job_failed", "discarded", sinkErr}},
		11: {{"job_completed", "completed", ""}},
		12: {{"job_failed", "discarded", "job timed out after 1s"}},
	}
	final := map[int]*harness.Job{1: r2, 2: d2, 3: d1, 6: t6, 7: u7, 8: b8, 10: k10, 12: c12}
	for i, w := range want {
		got := eventsFor(evs, ids[i])
		if len(got) != len(w) {
			t.Errorf("job %d (#%d): %d events %+v, want %d", ids[i], i, len(got), got, len(w))
			continue
		}
		nerr := 0
		for k, e := range got {
			checkEvent(t, e, w[k].kind, w[k].state)
			gotErr := ""
			if e.Error != nil {
				gotErr = *e.Error
			}
			if gotErr != w[k].err {
				t.Errorf("job %d (#%d) event %d error %q, want %q", ids[i], i, k, gotErr, w[k].err)
			}
			wantAttempt := k + 1
			if i == 4 || i == 5 {
				wantAttempt = k // a snooze gives the attempt back
			}
			if e.ClientID != "out1" || e.Attempt != wantAttempt {
				t.Errorf("job %d (#%d) event %d: %+v", ids[i], i, k, e)
			}
			if w[k].err == "" {
				continue
			}
			// The errors element of this attempt.
			at, _ := time.Parse(time.RFC3339Nano, *e.AttemptedAt)
			if row := final[i]; row != nil {
				checkErr(t, row, nerr, k+1, w[k].err, at)
				if w[k].state == "available" && nerr < len(row.Errors) {
					// River: retry n^4 s = 1 s (+-10%) after the attempt
					// ended (at + run time).
					next, _ := time.Parse(time.RFC3339Nano, *e.NextScheduledAt)
					end := row.Errors[nerr].At.Add(time.Duration(*e.RunMs * float64(time.Millisecond)))
					within(t, "first retry delay (scheduled_at - end of attempt 1)", next.Sub(end), time.Second, 150*time.Millisecond)
				}
			}
			nerr++
		}
	}
	// Statistics of the long-running ones reflect the work.
	if e := eventsFor(evs, ids[9]); len(e) == 1 && *e[0].RunMs < 190 {
		t.Errorf("cpu job run_ms = %v, want >= 200", *e[0].RunMs)
	}
	for _, i := range []int{6, 12} {
		if e := eventsFor(evs, ids[i]); len(e) >= 1 && (*e[0].RunMs < 1000 || *e[0].RunMs > 2000) {
			t.Errorf("timed-out job #%d run_ms = %v, want just over 1000", i, *e[0].RunMs)
		}
	}
}

// TestAgentOutcomesCancel: a running job cancelled the way River's
// Client.JobCancel does it (metadata.cancel_attempted_at + a river_control
// "cancel" notification) is cancelled promptly by a notify-mode agent and,
// through its 2 s cancel polling, by a poll-mode agent.
func TestAgentOutcomesCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode  string
		limit time.Duration
	}{
		{"notify", time.Second},
		{"poll", 3500 * time.Millisecond},
	} {
		tc := tc
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			dbURL := harness.NewRiverDB(t)
			conn := harness.Connect(t, dbURL)
			a := startAgent(t, dbURL, "cancel-"+tc.mode, "--queue", "q:5", "--mode", tc.mode,
				"--poll-interval", "200ms", "--shutdown-grace", "500ms", "--log-level", "debug")
			a.waitReady(t, "q", tc.mode == "notify")
			ids := harness.InsertJobs(t, conn,
				harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":60000}`, Queue: "q"},
				harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":60000}`, Queue: "q"})
			harness.WaitState(t, conn, ids[0], "running", 5*time.Second)
			harness.WaitState(t, conn, ids[1], "running", 5*time.Second)
			// Let a poll-mode agent's cancel poll find nothing first, so
			// the timing below is the poll's, not a lucky start.
			time.Sleep(300 * time.Millisecond)

			t0 := time.Now()
			harness.CancelJob(t, conn, ids[0])
			j := harness.WaitJob(t, conn, ids[0], 10*time.Second, "cancelled", func(j *harness.Job) bool { return j.State != "running" })
			took := time.Since(t0)
			t.Logf("%s mode: cancelled after %s", tc.mode, took)
			if took > tc.limit {
				t.Errorf("%s mode: cancel took %s, want < %s", tc.mode, took, tc.limit)
			}
			if j.State != "cancelled" || j.Attempt != 1 || j.FinalizedAt == nil || len(j.Errors) != 1 {
				t.Errorf("cancelled job row: %s", j)
			}
			checkErr(t, j, 0, 1, "JobCancelError: job cancelled remotely", *j.AttemptedAt)
			if _, ok := j.Metadata["cancel_attempted_at"]; !ok {
				t.Errorf("cancel_attempted_at gone from metadata: %s", j)
			}
			// The other job is untouched.
			if o := harness.GetJob(t, conn, ids[1]); o.State != "running" {
				t.Errorf("the other job: %s", o)
			}
			a.stop(t, 20*time.Second)
			evs := eventsFor(a.events(t), ids[0])
			if len(evs) != 1 {
				t.Fatalf("cancelled job events %+v", evs)
			}
			checkEvent(t, evs[0], "job_cancelled", "cancelled")
			if evs[0].Error == nil || *evs[0].Error != "JobCancelError: job cancelled remotely" {
				t.Errorf("cancel event error %v", evs[0].Error)
			}
			// The agent's stop interrupted the other one.
			o := harness.GetJob(t, conn, ids[1])
			if o.State != "available" || o.Attempt != 0 || len(o.Errors) != 0 {
				t.Errorf("interrupted job row: %s", o)
			}
		})
	}
}

// TestAgentOutcomesSink: tributary.sink writes exactly N rows per job into a
// table of a separate database (created by the agent), and fails clearly on
// bad arguments.
func TestAgentOutcomesSink(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	sinkURL := harness.NewDB(t)
	conn := harness.Connect(t, dbURL)
	sink := harness.Connect(t, sinkURL)

	// Inserted before the agent starts, so the first fetch races the
	// creation of the sink table.
	ids := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "tributary.sink", Args: `{"rows":7}`, Queue: "q"},
		harness.JobSpec{Kind: "tributary.sink", Args: `{"rows":13}`, Queue: "q"},
		harness.JobSpec{Kind: "tributary.sink", Args: `{"rows":0}`, Queue: "q", MaxAttempts: 1},
	)
	a := startAgent(t, dbURL, "sink1", "--queue", "q:5", "--sink-url", sinkURL, "--sink-table", "sink_rows")
	for _, id := range ids[:2] {
		j := harness.WaitState(t, conn, id, "completed", 10*time.Second)
		if j.Attempt != 1 || len(j.Errors) != 0 {
			t.Errorf("sink job: %s", j)
		}
	}
	bad := harness.WaitState(t, conn, ids[2], "discarded", 10*time.Second)
	if len(bad.Errors) != 1 || !strings.Contains(bad.Errors[0].Error, `"rows"`) {
		t.Errorf("sink job with rows 0: %s", bad)
	}
	a.stop(t, 20*time.Second)

	want := map[int64]int64{ids[0]: 7, ids[1]: 13}
	rows, err := sink.Query(context.Background(), `SELECT job_id, count(*), count(DISTINCT row_no), min(row_no), max(row_no),
		count(DISTINCT payload) FROM sink_rows GROUP BY job_id`)
	if err != nil {
		t.Fatalf("read sink table: %v", err)
	}
	got := map[int64]int64{}
	for rows.Next() {
		var id, n, distinct, lo, hi, payloads int64
		if err := rows.Scan(&id, &n, &distinct, &lo, &hi, &payloads); err != nil {
			t.Fatal(err)
		}
		got[id] = n
		if distinct != n || lo != 1 || hi != n || payloads != n {
			t.Errorf("job %d: %d rows, %d distinct row_no %d..%d, %d payloads", id, n, distinct, lo, hi, payloads)
		}
	}
	rows.Close()
	if len(got) != len(want) || got[ids[0]] != 7 || got[ids[1]] != 13 {
		t.Errorf("sink rows per job %v, want %v", got, want)
	}
}

// TestAgentOutcomesQueuesAndLimits: a client works only its own queues,
// never runs more jobs of a queue at once than its max workers, and takes
// jobs in River's order (priority, scheduled_at, id).
func TestAgentOutcomesQueuesAndLimits(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	var specs []harness.JobSpec
	for i := 0; i < 8; i++ {
		specs = append(specs, harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":300}`, Queue: "a"})
	}
	// Queue b, one worker: inserted in reverse priority order.
	for p := 4; p >= 1; p-- {
		specs = append(specs, harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms":50}`, Queue: "b", Priority: p})
	}
	specs = append(specs, harness.JobSpec{Kind: "tributary.noop", Queue: "elsewhere"})
	ids := harness.InsertJobs(t, conn, specs...)

	a := startAgent(t, dbURL, "lim1", "--queue", "a:3", "--queue", "b:1", "--poll-interval", "100ms")
	maxA, maxB := int64(0), int64(0)
	harness.Eventually(t, 15*time.Second, "queues a and b done", func() bool {
		if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue = 'a' AND state = 'running'`); n > maxA {
			maxA = n
		}
		if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue = 'b' AND state = 'running'`); n > maxB {
			maxB = n
		}
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue IN ('a', 'b') AND state = 'completed'`) == 12
	})
	a.stop(t, 20*time.Second)
	// Rows in state 'running' may exceed the limit for a moment: as in
	// River, a slot frees when the job ends, before its write-back commits.
	// What the limit bounds is execution, which the events give: each job
	// ran from scheduled_at + queue_wait to that + run.
	t.Logf("most rows 'running' at once: a %d, b %d", maxA, maxB)
	type edge struct {
		at    time.Time
		delta int
	}
	edges := map[string][]edge{}
	for _, e := range a.events(t) {
		sched, _ := time.Parse(time.RFC3339Nano, *e.ScheduledAt)
		start := sched.Add(time.Duration(*e.QueueWaitMs * float64(time.Millisecond)))
		end := start.Add(time.Duration(*e.RunMs * float64(time.Millisecond)))
		edges[e.Queue] = append(edges[e.Queue], edge{start, 1}, edge{end, -1})
	}
	maxRun := map[string]int{}
	for q, es := range edges {
		sort.Slice(es, func(i, j int) bool {
			if es[i].at.Equal(es[j].at) {
				return es[i].delta < es[j].delta // an end before a start at the same instant
			}
			return es[i].at.Before(es[j].at)
		})
		n := 0
		for _, e := range es {
			n += e.delta
			if n > maxRun[q] {
				maxRun[q] = n
			}
		}
	}
	t.Logf("most jobs executing at once: a %d (max 3), b %d (max 1)", maxRun["a"], maxRun["b"])
	if maxRun["a"] > 3 || maxRun["b"] > 1 {
		t.Errorf("max workers exceeded: a ran %d at once (3 allowed), b %d (1 allowed)", maxRun["a"], maxRun["b"])
	}
	if maxRun["a"] < 2 {
		t.Errorf("queue a never ran more than %d job at once with 3 workers", maxRun["a"])
	}
	// Queue b ran in priority order 1, 2, 3, 4 (the reverse of insertion).
	var prev time.Time
	for k := 11; k >= 8; k-- {
		j := harness.GetJob(t, conn, ids[k])
		if !j.AttemptedAt.After(prev) {
			t.Errorf("queue b: the priority %d job started at %s, not after the priority %d one (%s)",
				j.Priority, j.AttemptedAt, j.Priority-1, prev)
		}
		prev = *j.AttemptedAt
	}
	if j := harness.GetJob(t, conn, ids[12]); j.State != "available" || j.Attempt != 0 {
		t.Errorf("job of a queue the agent does not serve: %s", j)
	}
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_queue WHERE name IN ('a', 'b')`); n != 2 {
		t.Errorf("river_queue rows for a and b: %d, want 2", n)
	}
}

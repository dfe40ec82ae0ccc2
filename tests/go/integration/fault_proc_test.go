package integration

// Faults of processes and disks under a running cluster (agents forwarding
// to a coordinator), each test ending with the nothing-lost comparison
// against river_job (checkNothingLost in coordinator_test.go):
//
//   - TestFaultProcPostgresRestartFast: `pg_ctl restart -m fast` of the
//     cluster's own PostgreSQL server mid-run.
//   - TestFaultProcPostgresRestartImmediate: the server quits like a crash
//     (`-m immediate`) and one agent is killed (SIGKILL) while it is down;
//     its write-back intents are resolved against river_job on restart.
//   - TestFaultProcDiskFull: the agents' outboxes fill their file system
//     (a small tmpfs: ENOSPC) or reach outbox.max_bytes while the
//     coordinator is stopped; fetching pauses and resumes by itself.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tributary/tests/harness"
)

// fpFinished counts the jobs in a final state.
func fpFinished(t *testing.T, c *pgx.Conn, queues ...string) int64 {
	t.Helper()
	return harness.QueryInt(t, c, `SELECT count(*) FROM river_job
		WHERE state IN ('completed', 'discarded', 'cancelled') AND queue = ANY($1)`, queues)
}

// fpGrep returns the lines containing every one of the substrings.
func fpGrep(lines []string, subs ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// pgRestart runs `pg_ctl restart -m mode` on the private server (same
// options and port: pg_ctl reuses postmaster.opts).
func pgRestart(t *testing.T, pg *harness.PrivatePG, mode string) {
	t.Helper()
	args := []string{"/usr/lib/postgresql/15/bin/pg_ctl", "-D", pg.Dir + "/data", "-l", pg.Dir + "/server.log",
		"-m", mode, "-w", "-t", "60", "restart"}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "tributary-pg", "--"}, args...)...)
	} else {
		cmd = exec.Command(args[0], args[1:]...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl restart -m %s: %v\n%s", mode, err, out)
	}
}

// fpListeners counts the agents' LISTEN sessions.
func fpListeners(t *testing.T, c *pgx.Conn) int64 {
	t.Helper()
	return harness.QueryInt(t, c, `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'tributary-agent' AND query LIKE '%LISTEN%'`)
}

// fpProbe inserts one job into the queue only the notify-only clients
// (poll fallback 10 minutes) work, with the insert notification, and
// returns how long it took to complete: within 30 s it was found through
// LISTEN, not by the poll fallback.
func fpProbe(t *testing.T, c *pgx.Conn) time.Duration {
	t.Helper()
	t0 := time.Now()
	id := harness.InsertJobs(t, c, harness.JobSpec{Kind: "tributary.noop", Queue: "lq"})[0]
	harness.WaitState(t, c, id, "completed", 30*time.Second)
	return time.Since(t0)
}

const fpMaint = `log_level: info
leader:
  elect_interval: 500ms
  ttl: 3s
maintenance:
  rescuer_interval: 500ms
  rescue_stuck_jobs_after: 15s
  scheduler_interval: 500ms
`

// fpClients: a notify and a poll client on fq, and a notify-only client on
// lq whose poll fallback (10 minutes) is longer than any test: a job on lq
// is found only through the insert notification.
func fpClients(node string) string {
	return `clients:
  - id: ` + node + `-notify
    mode: notify
    job_timeout: 5s
    queues: ["fq:30"]
  - id: ` + node + `-poll
    mode: poll
    poll_interval: 200ms
    job_timeout: 5s
    queues: ["fq:30"]
  - id: ` + node + `-listen
    mode: notify
    poll_interval: 10m
    job_timeout: 5s
    queues: ["lq:5"]
`
}

// fpStates counts river_job's rows per state.
func fpStates(t *testing.T, c *pgx.Conn) map[string]int64 {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT state::text, count(*) FROM river_job GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		out[st] = n
	}
	return out
}

// dbView returns the coordinator's polling view (status "database").
func dbView(t *testing.T, coord *harness.Coordinator) map[string]any {
	t.Helper()
	db, _ := coord.Query(t, "status")["database"].(map[string]any)
	if db == nil {
		t.Fatal("status has no database view")
	}
	return db
}

func TestFaultProcPostgresRestartFast(t *testing.T) {
	t.Parallel()
	testPostgresRestart(t, "fast")
}

func TestFaultProcPostgresRestartImmediate(t *testing.T) {
	t.Parallel()
	testPostgresRestart(t, "immediate")
}

// testPostgresRestart: three agents (notify + poll clients each, plus a
// notify-only client) forward to a coordinator whose polling view reads
// the same private PostgreSQL server. Failing jobs are retried and
// discarded before the fault; 6,000 sleep jobs flow through it; more
// failing jobs after it.
//
// fast: `pg_ctl restart -m fast` mid-run. immediate: the server is stopped
// with -m immediate (a crash: in-flight statements get no answer, whether
// or not they committed), one agent is killed (SIGKILL) while it is down
// with write-backs unanswered, the server is started again and so is the
// agent, on the same outbox: its intents are resolved against river_job.
//
// Then: every agent's LISTEN is back (a job inserted with the notification
// into a queue served only by notify clients with a 10-minute poll
// fallback is picked up within 30 s), every job finishes, nothing is lost
// or counted twice, and the polling view polls again: its non-final state
// counts are re-polled (not spaced by the outage's length) and equal the
// table's, and it missed no finished row, not even the write-backs the
// agents commit after reconnecting later than the poller (it holds its
// finalized_at bound after an outage: docs/POLLING.md).
func testPostgresRestart(t *testing.T, mode string) {
	start := time.Now()
	// Durable: an immediate stop must not lose commits already answered.
	pg := harness.StartPrivatePG(t, "--durable")
	dbURL := pg.URL
	harness.MigrateRiver(t, dbURL)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret},
		"--data-dir", t.TempDir(), "--database-url", dbURL, "--poll-interval", "300ms")
	nodes := []string{"pa", "pb", "pc"}
	outboxes := map[string]string{}
	agents := map[string]*harness.Proc{}
	for _, n := range nodes {
		outboxes[n] = filepath.Join(t.TempDir(), "outbox")
		agents[n] = startForwardingAgent(t, dbURL, coord, secret, n, outboxes[n], fpMaint+fpClients(n))
	}
	harness.Eventually(t, 20*time.Second, "three LISTEN sessions", func() bool { return fpListeners(t, conn) == 3 })
	t.Logf("probe job before the fault: picked up in %s", fpProbe(t, conn).Round(time.Millisecond))
	var total int64 = 1

	// Failing jobs (half retried once, some discarded at once), finished
	// before the fault: no job the rescuer recovers after it is at its last
	// attempt (the rescuer would discard it, without an event: a legitimate
	// difference from the event view).
	insertJobs(t, conn, 400, "tributary.fail", `{"probability": 0.5, "message": "upstream returned 503"}`, "fq", 2)
	insertJobs(t, conn, 200, "tributary.fail", `{"message": "card 4242 declined"}`, "fq", 1)
	total += 600
	harness.Eventually(t, 60*time.Second, "failing jobs finished", func() bool { return fpFinished(t, conn, "fq") == 600 })

	before := harness.Num(dbView(t, coord), "polls", "ok")

	// Sleep jobs flowing through the fault: 3,000 running, then 3,000 more
	// inserted just before it (at most 180 at a time, 200 ms each: the
	// fault finds every agent busy however fast they are).
	for i := 0; i < 6; i++ {
		insertJobs(t, conn, 500, "tributary.sleep", `{"ms": 200}`, "fq", 25)
	}
	harness.Eventually(t, 60*time.Second, "jobs flowing", func() bool { return fpFinished(t, conn, "fq") >= 600+600 })
	insertJobs(t, conn, 3000, "tributary.sleep", `{"ms": 200}`, "fq", 25)
	total += 6000
	finishedAtFault := fpFinished(t, conn, "fq")

	victim := "pc"
	down := time.Now()
	var outage time.Duration
	switch mode {
	case "fast":
		pgRestart(t, pg, "fast")
		outage = time.Since(down)
		t.Logf("pg_ctl restart -m fast with %d of %d jobs finished: %s", finishedAtFault, total, outage.Round(time.Millisecond))
	case "immediate":
		running := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'running'
			AND attempted_by[cardinality(attempted_by)] LIKE $1`, victim+"-%")
		conn.Close(context.Background())
		pg.StopMode("immediate")
		// The victim's running jobs end and their write-backs fail (the
		// intents are in its outbox); then it dies.
		time.Sleep(1500 * time.Millisecond)
		agents[victim].Kill()
		<-agents[victim].Done()
		pg.Start()
		outage = time.Since(down)
		t.Logf("PostgreSQL stopped (immediate) with %d of %d jobs finished, %d running on %s; %s killed; back after %s",
			finishedAtFault, total, running, victim, victim, outage.Round(time.Millisecond))
		conn = harness.Connect(t, dbURL)
		agents[victim] = startForwardingAgent(t, dbURL, coord, secret, victim, outboxes[victim], fpMaint+fpClients(victim))
		if running > 0 {
			// Write-backs were unanswered when it died: resolved at start.
			l := harness.WaitForStderrLine(t, agents[victim], "in-flight write-back(s) of earlier boots:", 60*time.Second)
			t.Logf("%s restarted: %s", victim, l[strings.Index(l, "AGT-INTENT"):])
		}
	default:
		t.Fatalf("mode %q", mode)
	}
	if mode == "fast" {
		conn.Close(context.Background())
		conn = harness.Connect(t, dbURL)
	}

	// LISTEN re-established on every agent: a notified job is picked up
	// promptly (the notify-only clients poll every 10 minutes).
	harness.Eventually(t, 30*time.Second, "three LISTEN sessions again", func() bool { return fpListeners(t, conn) == 3 })
	t.Logf("probe job after the fault: picked up in %s", fpProbe(t, conn).Round(time.Millisecond))
	total++

	// More failing jobs after the fault.
	insertJobs(t, conn, 300, "tributary.fail", `{"probability": 0.5, "message": "upstream returned 503"}`, "fq", 2)
	insertJobs(t, conn, 300, "tributary.noop", `{}`, "fq", 25)
	total += 600
	harness.Eventually(t, 120*time.Second, "every job finished", func() bool {
		return fpFinished(t, conn, "fq", "lq") == total
	})
	status := checkNothingLost(t, coord, conn, total)

	// The polling view recovered: it polls again without error, at least
	// twice after every job finished, and its counts of the non-final
	// states (rows now) are polled again too (their period follows the
	// statement's cost, not the outage it waited through) and equal the
	// table's. Its cumulative counts equal the events: after an outage it
	// holds its finalized_at bound for outage_hold_ms (10 s) + margin
	// (2 s) from its first poll that succeeds again, and the agents'
	// write-backs, finalized before or during the outage, commit within
	// their reconnection backoff (at most 5 s plus a fifth of jitter)
	// after the server is back, which is no earlier than that poll.
	allDone := time.Now()
	db := dbView(t, coord)
	okAtDone := harness.Num(db, "polls", "ok")
	harness.Eventually(t, 30*time.Second, "the polling view polling again, non-final states included", func() bool {
		db = dbView(t, coord)
		age := harness.Num(db, "states_age_ms")
		return db["error"] == nil && harness.Num(db, "polls", "ok") > okAtDone+1 &&
			age >= 0 && time.Duration(age)*time.Millisecond < time.Since(allDone)
	})
	if harness.Num(db, "polls", "ok") <= before {
		t.Errorf("polls ok %d, %d before the fault", harness.Num(db, "polls", "ok"), before)
	}
	statesAge := harness.Num(db, "states_age_ms")
	tableStates := fpStates(t, conn)
	for _, st := range []string{"available", "pending", "running", "retryable", "scheduled"} {
		if harness.Num(db, "states", st) != tableStates[st] {
			b, _ := json.Marshal(db)
			t.Errorf("polling view state %s: %d, table %d: %s", st, harness.Num(db, "states", st), tableStates[st], b)
		}
	}
	var missed int64
	for _, r := range harness.List(db, "rows") {
		d := harness.Num(r, "difference")
		if d > 0 {
			t.Errorf("polling view row %v: more in the database than in the events", r)
		}
		missed -= d
	}
	if missed > 0 {
		b, _ := json.Marshal(db)
		t.Errorf("polling view: %d finished rows fewer than the events (missed after the outage): %s", missed, b)
	}
	rescued := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job
		WHERE errors[1]->>'error' LIKE 'Stuck job rescued by JobRescuer%'`)
	var complaints, recoveries int
	for _, n := range nodes {
		lines := agents[n].StderrLines()
		complaints += len(fpGrep(lines, "PG-CONN", "database connection"))
		recoveries += len(fpGrep(lines, "PG-CONN", "connected again"))
	}
	if recoveries == 0 {
		t.Errorf("no agent logged a database reconnection")
	}
	t.Logf("%s restart: %d jobs in %s (outage %s); %d rescued; polls ok %d failed %d, "+
		"%d finished rows missed by the polling view, %d read as outage rows (committed late during its hold), "+
		"late_rows %d (max %d ms), states_age_ms %d, states_every_ms %d; "+
		"agents logged %d connection complaints, %d recoveries; %d duplicates ignored",
		mode, total, time.Since(start).Round(time.Millisecond), outage.Round(time.Millisecond), rescued,
		harness.Num(db, "polls", "ok"), harness.Num(db, "polls", "failed"), missed,
		harness.Num(db, "cursor", "outage_rows"), harness.Num(db, "cursor", "late_rows"),
		harness.Num(db, "cursor", "max_lateness_ms"), statesAge,
		harness.Num(db, "polls", "states_every_ms"), complaints, recoveries,
		harness.Num(status, "coordinator", "duplicates"))
	for _, n := range nodes {
		agents[n].Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, agents[n], 30*time.Second)
	}
}

// fpTmpfs mounts a tmpfs of the given size on a new directory and
// unmounts it at the end of the test (after the processes using it, which
// are started later and so stopped first).
func fpTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "trib-fp-disk-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		_ = os.Remove(dir)
		t.Fatalf("mount a %s tmpfs on %s (this test needs root, or CAP_SYS_ADMIN): %v\n%s", size, dir, err, out)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 50; i++ {
			if err = syscall.Unmount(dir, 0); err == nil || errors.Is(err, syscall.EINVAL) {
				break
			}
			time.Sleep(100 * time.Millisecond) // EBUSY: a process still exiting
		}
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			t.Errorf("umount %s: %v (detaching it lazily)", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// fpStatfs returns the free and total bytes of the file system at dir.
func fpStatfs(t *testing.T, dir string) (free, total uint64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize)
}

// fpDirBytes sums the sizes of the files in dir.
func fpDirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestFaultProcDiskFull: the coordinator is stopped while three agents
// work, each on its own queue, so their outboxes only grow:
//
//   - full8m: outbox on a 1 MiB tmpfs, default 8 MiB segments (the whole
//     outbox is one segment still being appended to);
//   - full64k: outbox on a 1 MiB tmpfs, 64 KiB segments;
//   - bound: outbox on the ordinary disk, outbox.max_bytes 1 MiB.
//
// Each stops fetching (the tmpfs ones when a write fails with ENOSPC, the
// bound one at max_bytes) and says so in its log; no job it has is lost:
// what cannot be written stays in memory. Then the coordinator is started
// again: the events arrive, the durable acknowledgements delete segments,
// the writes work again, fetching resumes by itself and every job
// finishes. Nothing lost, nothing counted twice.
func TestFaultProcDiskFull(t *testing.T) {
	t.Parallel()
	start := time.Now()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret}, "--data-dir", t.TempDir())

	type disk struct {
		node, queue, dir string
		tmpfs            bool
		flags            []string
		p                *harness.Proc
	}
	disks := []*disk{
		{node: "full8m", queue: "d8", dir: fpTmpfs(t, "1m"), tmpfs: true},
		{node: "full64k", queue: "d64", dir: fpTmpfs(t, "1m"), tmpfs: true, flags: []string{"--outbox-segment-bytes", "64KiB"}},
		{node: "bound", queue: "db", dir: filepath.Join(t.TempDir(), "outbox"),
			flags: []string{"--outbox-max-bytes", "1MiB", "--outbox-segment-bytes", "64KiB"}},
	}
	for _, d := range disks {
		yaml := "log_level: info\nclients:\n" +
			"  - id: " + d.node + "-notify\n    mode: notify\n    queues: [\"" + d.queue + ":50\"]\n" +
			"  - id: " + d.node + "-poll\n    mode: poll\n    poll_interval: 200ms\n    queues: [\"" + d.queue + ":50\"]\n"
		outbox := d.dir
		if d.tmpfs {
			outbox = filepath.Join(d.dir, "outbox")
		}
		d.p = startForwardingAgent(t, dbURL, coord, secret, d.node, outbox, yaml, d.flags...)
		d.dir = outbox
	}
	// Connected and forwarding before the coordinator goes away.
	for _, d := range disks {
		insertJobs(t, conn, 100, "tributary.noop", `{}`, d.queue, 25)
	}
	harness.Eventually(t, 30*time.Second, "first jobs counted", func() bool {
		return harness.Num(coord.Query(t, "status"), "totals", "finished") == 300
	})
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
	t.Log("coordinator stopped")

	// Far more jobs than fit: ~170 bytes of outbox per job (event, intent,
	// confirm): 1 MiB holds ~6,000.
	const perQueue = 12000
	var total int64 = 300
	for _, d := range disks {
		for i := 0; i < 4; i++ {
			insertJobs(t, conn, perQueue/8, "tributary.noop", `{}`, d.queue, 25)
			insertJobs(t, conn, perQueue/8, "tributary.fail", `{"probability": 0.3, "message": "disk test failure"}`, d.queue, 1)
		}
		total += perQueue
	}

	// Each agent stops fetching: full (ENOSPC or the bound) and idle, with
	// jobs left in its queue.
	for _, d := range disks {
		what := "ENOSPC"
		if d.tmpfs {
			harness.WaitForStderrLine(t, d.p, "No space left on device", 120*time.Second)
		} else {
			what = "max_bytes"
		}
		l := harness.WaitForStderrLine(t, d.p, "AGT-BACKPRESSURE", 120*time.Second)
		if !strings.Contains(l, "is full") {
			t.Fatalf("%s: backpressure line %q, want 'is full'", d.node, l)
		}
		harness.Eventually(t, 60*time.Second, d.node+": no job running", func() bool {
			return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue = $1 AND state = 'running'`, d.queue) == 0
		})
		done := fpFinished(t, conn, d.queue)
		time.Sleep(2 * time.Second)
		if now := fpFinished(t, conn, d.queue); now != done {
			t.Fatalf("%s: %d jobs finished 2 s after the outbox was full and idle (was %d): still fetching", d.node, now, done)
		}
		if done >= perQueue+100 {
			t.Fatalf("%s: every job finished before the outbox was full: the test needs more jobs", d.node)
		}
		if d.p.Exited() {
			t.Fatalf("%s exited (code %d) with a full outbox", d.node, d.p.ExitCode())
		}
		used := fpDirBytes(t, d.dir)
		msg := fmt.Sprintf("%s (%s): fetching paused with %d of %d jobs finished, outbox %d bytes", d.node, what, done-100, perQueue, used)
		if d.tmpfs {
			free, size := fpStatfs(t, d.dir)
			msg += fmt.Sprintf(", file system %d of %d bytes free", free, size)
			for _, l := range fpGrep(d.p.StderrLines(), "AGT-OUTBOX", "No space left on device") {
				if !strings.Contains(l, "kept in memory, fetching paused") && !strings.Contains(l, "cannot create outbox segment") {
					t.Errorf("%s: unclear log line %q", d.node, l)
				}
			}
		} else if used < 1<<20 || used > 3<<20 {
			t.Errorf("%s: outbox %d bytes with max_bytes 1 MiB: want at least 1 MiB (full) and not much more", d.node, used)
		}
		t.Log(msg)
	}
	stalled := time.Now()

	coord.Restart(t)
	t.Log("coordinator started again")
	harness.Eventually(t, 180*time.Second, "every job finished", func() bool {
		return fpFinished(t, conn, "d8", "d64", "db") == total
	})
	t.Logf("all %d jobs finished %s after the coordinator came back", total, time.Since(stalled).Round(time.Millisecond))
	checkNothingLost(t, coord, conn, total)
	for _, d := range disks {
		lines := d.p.StderrLines()
		if len(fpGrep(lines, "AGT-BACKPRESSURE", "fetching resumed")) == 0 {
			t.Errorf("%s: no 'fetching resumed' in its log", d.node)
		}
		if d.tmpfs && len(fpGrep(lines, "AGT-OUTBOX", "outbox writes work again")) == 0 {
			t.Errorf("%s: no 'outbox writes work again' in its log", d.node)
		}
		t.Logf("%s: %d full / %d resumed transitions logged, outbox now %d bytes", d.node,
			len(fpGrep(lines, "AGT-BACKPRESSURE", "is full")), len(fpGrep(lines, "AGT-BACKPRESSURE", "fetching resumed")),
			fpDirBytes(t, d.dir))
	}
	harness.Eventually(t, 30*time.Second, "outboxes drained", func() bool {
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			s, _ := n["sample"].(map[string]any)
			if s == nil || harness.Num(s, "outbox_events") != 0 {
				return false
			}
		}
		return true
	})
	for _, d := range disks {
		d.p.Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, d.p, 30*time.Second)
	}
	t.Logf("disk-full test: %s", time.Since(start).Round(time.Millisecond))
}

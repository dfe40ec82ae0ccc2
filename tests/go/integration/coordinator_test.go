package integration

// The coordinator's cluster-wide view against river_job itself: real
// agents forwarding over real nng sockets to a real coordinator, every test
// ending with the nothing-lost comparison (every job accounted for, none
// counted twice).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

func newSecret(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// clusterAgent starts an agent forwarding to coord with one notify and one
// poll client on 'queue', its outbox in outbox (reused across restarts).
func clusterAgent(t *testing.T, dbURL string, coord *harness.Coordinator, secret, node, queue, outbox string, extraYAML string, clientYAML ...string) *harness.Proc {
	t.Helper()
	return startForwardingAgent(t, dbURL, coord, secret, node, outbox, agentYAML(node, queue, extraYAML, clientYAML...))
}

// agentYAML is the configuration clusterAgent's agents use: one notify and
// one poll client on the queues (comma-separated; 50 workers each),
// extraYAML at the top level and clientYAML in each client.
func agentYAML(node, queues, extraYAML string, clientYAML ...string) string {
	queue := strings.ReplaceAll(queues, ",", `:50", "`) // in ["...:50"] below
	return `log_level: info
leader:
  elect_interval: 500ms
  ttl: 3s
` + extraYAML + `clients:
  - id: ` + node + `-notify
    mode: notify
    queues: ["` + queue + `:50"]
` + strings.Join(clientYAML, "") + `  - id: ` + node + `-poll
    mode: poll
    poll_interval: 200ms
    queues: ["` + queue + `:50"]
` + strings.Join(clientYAML, "")
}

// writeConfig writes an agent's YAML into a temporary file; returns its path.
func writeConfig(t *testing.T, node, yaml string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), node+".yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startForwardingAgent starts an agent with the configuration yaml, forwarding to
// coord with the shared secret, its outbox in outbox, extra flags appended;
// a sanitizer report from it fails the test.
func startForwardingAgent(t *testing.T, dbURL string, coord *harness.Coordinator, secret, node, outbox, yaml string, extra ...string) *harness.Proc {
	t.Helper()
	args := append([]string{"--database-url", dbURL, "--config", writeConfig(t, node, yaml), "--node-id", node,
		"--coordinator", coord.Listen, "--outbox-dir", outbox}, extra...)
	p := harness.Start(t, harness.Bin(t, "tributary-agent"), args, []string{"TRIBUTARY_SECRET=" + secret})
	t.Cleanup(func() {
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("agent %s: sanitizer report: %s", node, r)
		}
	})
	return p
}

// insertJobs inserts n jobs of one kind with args and max_attempts into
// queue, in one transaction, with the insert notification.
func insertJobs(t *testing.T, c *pgx.Conn, n int, kind, args, queue string, maxAttempts int) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue)
		SELECT $1::jsonb, $2, $3, $4 FROM generate_series(1, $5::int)`, args, kind, maxAttempts, queue, n); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]string{"queue": queue})
	if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_insert', $1)`, string(payload)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

type qks struct{ queue, kind, state string }

// dbFinal counts final rows per (queue, kind, state).
func dbFinal(t *testing.T, c *pgx.Conn) map[qks]int64 {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT queue, kind, state::text, count(*) FROM river_job
		WHERE state IN ('completed', 'discarded', 'cancelled') GROUP BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[qks]int64{}
	for rows.Next() {
		var k qks
		var n int64
		if err := rows.Scan(&k.queue, &k.kind, &k.state, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

// eventFinal sums the coordinator's groups per (queue, kind, final state).
func eventFinal(status map[string]any) map[qks]int64 {
	out := map[qks]int64{}
	for _, g := range harness.List(status, "groups") {
		q, _ := g["queue"].(string)
		k, _ := g["kind"].(string)
		for _, st := range []string{"completed", "discarded", "cancelled"} {
			if n := harness.Num(g, st); n > 0 {
				out[qks{q, k, st}] += n
			}
		}
	}
	return out
}

func sameCounts(a, b map[qks]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// checkNothingLost: the coordinator's finished counts per (queue, kind,
// state) equal river_job's, and the events it applied equal the events the
// table implies (one per finished job plus one per recorded error and
// snooze), so none was counted twice.
func checkNothingLost(t *testing.T, coord *harness.Coordinator, c *pgx.Conn, wantFinished int64) map[string]any {
	t.Helper()
	var status map[string]any
	harness.Eventually(t, 60*time.Second, "event view equal to river_job", func() bool {
		status = coord.Query(t, "status")
		return harness.Num(status, "totals", "finished") == wantFinished &&
			sameCounts(eventFinal(status), dbFinal(t, c))
	})
	db := dbFinal(t, c)
	ev := eventFinal(status)
	if !sameCounts(db, ev) {
		t.Fatalf("per (queue, kind, state): database %v, events %v", db, ev)
	}
	// Events implied by the table: one per completed or cancelled job, one
	// job_failed per recorded error (the last one of a discarded job
	// included) except the rescuer's (maintenance, not a job event), one
	// job_snoozed per snooze.
	implied := harness.QueryInt(t, c, `SELECT
		count(*) FILTER (WHERE state IN ('completed', 'cancelled'))
		+ coalesce(sum((SELECT count(*) FROM unnest(errors) AS e
			WHERE e->>'error' NOT LIKE 'Stuck job rescued by JobRescuer%')), 0)
		+ coalesce(sum(coalesce((metadata->>'snoozes')::int, 0)), 0)
		FROM river_job`)
	applied := harness.Num(status, "coordinator", "events_applied")
	if applied != implied {
		t.Errorf("coordinator applied %d events, river_job implies %d", applied, implied)
	}
	t.Logf("nothing lost: %d finished jobs, %d events applied, %d duplicates ignored",
		wantFinished, applied, harness.Num(status, "coordinator", "duplicates"))
	return status
}

// TestCoordinatorCluster: 3 agents x 2 clients (notify + poll) work 30,000
// jobs with mixed outcomes; `tributary wait` returns when the last one
// finished (not before); the coordinator's counts equal river_job per
// (queue, kind, state); failures are grouped by normalised message; the
// database view agrees; every node is alive with its two clients.
func TestCoordinatorCluster(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	env := []string{"TRIBUTARY_SECRET=" + secret}
	coord := harness.StartCoordinator(t, env, "--data-dir", t.TempDir(), "--database-url", dbURL, "--poll-interval", "300ms")
	var agents []*harness.Proc
	for i := 1; i <= 3; i++ {
		node := fmt.Sprintf("cl%d", i)
		agents = append(agents, clusterAgent(t, dbURL, coord, secret, node, "cq", filepath.Join(t.TempDir(), "outbox"), ""))
	}
	const total = 30000
	// `wait` starts before the jobs exist: it must not return early.
	type waitResult struct {
		out, errs string
		code      int
		at        time.Time
	}
	waitDone := make(chan waitResult, 1)
	go func() {
		out, errs, code := coord.CLI(t, 200*time.Second, "wait", "--count", fmt.Sprint(total), "--timeout", "180s", "--json")
		waitDone <- waitResult{out, errs, code, time.Now()}
	}()
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	for i := 0; i < 12; i++ { // 24,000 no-ops in 12 batches while the agents run
		insertJobs(t, conn, 2000, "tributary.noop", `{}`, "cq", 25)
	}
	insertJobs(t, conn, 3000, "tributary.fail", `{"message": "card 4242 declined"}`, "cq", 1)
	insertJobs(t, conn, 1500, "tributary.fail", `{"probability": 0.5, "message": "upstream returned 503"}`, "cq", 2)
	insertJobs(t, conn, 1500, "tributary.snooze", `{"ms": 200, "times": 1}`, "cq", 25)

	var w waitResult
	select {
	case w = <-waitDone:
	case <-time.After(210 * time.Second):
		t.Fatal("tributary wait did not return")
	}
	finishedAtReturn := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state IN ('completed', 'discarded', 'cancelled')`)
	if w.code != 0 {
		t.Fatalf("tributary wait exited %d: %s %s", w.code, w.out, w.errs)
	}
	if finishedAtReturn != total {
		t.Fatalf("tributary wait returned when river_job had %d finished jobs, want %d", finishedAtReturn, total)
	}
	var lastFinal time.Time
	if err := conn.QueryRow(context.Background(), `SELECT max(finalized_at) FROM river_job`).Scan(&lastFinal); err != nil {
		t.Fatal(err)
	}
	t.Logf("30,000 jobs in %s; wait returned %s after the last finalized_at", time.Since(t0).Round(time.Millisecond), w.at.Sub(lastFinal).Round(time.Millisecond))

	status := checkNothingLost(t, coord, conn, total)

	// Failure groups: "card N declined" for every discarded card job.
	failures := coord.Query(t, "failures")
	byMsg := map[string]map[string]any{}
	for _, f := range harness.List(failures, "failures") {
		msg, _ := f["error"].(string)
		byMsg[msg] = f
	}
	card, ok := byMsg["card N declined"]
	if !ok {
		t.Fatalf("no failure group \"card N declined\": %v", byMsg)
	}
	if harness.Num(card, "count") != 3000 || harness.Num(card, "discarded") != 3000 || card["kind"] != "tributary.fail" {
		t.Errorf("card failure group %v, want count 3000, discarded 3000, kind tributary.fail", card)
	}
	upstreamDB := harness.QueryInt(t, conn, `SELECT coalesce(sum(array_length(errors, 1)), 0) FROM river_job
		WHERE args->>'message' = 'upstream returned 503'`)
	if up, ok := byMsg["upstream returned N"]; !ok || harness.Num(up, "count") != upstreamDB {
		t.Errorf("upstream failure group %v, want count %d (river_job errors)", up, upstreamDB)
	}

	// Nodes: three, alive, each with a notify and a poll client.
	nodes := coord.Query(t, "nodes")
	if n := harness.List(nodes, "nodes"); len(n) != 3 {
		t.Errorf("%d nodes, want 3", len(n))
	}
	for _, n := range harness.List(nodes, "nodes") {
		if n["liveness"] != "alive" {
			t.Errorf("node %v liveness %v", n["node"], n["liveness"])
		}
		modes := map[string]bool{}
		for _, c := range harness.List(n, "clients") {
			m, _ := c["mode"].(string)
			modes[m] = true
		}
		if !modes["notify"] || !modes["poll"] {
			t.Errorf("node %v clients %v: want one notify and one poll", n["node"], harness.List(n, "clients"))
		}
	}
	// The polling view agrees with the event view once it has polled.
	harness.Eventually(t, 20*time.Second, "database view without differences", func() bool {
		st := coord.Query(t, "status")
		for _, r := range harness.List(st, "database", "rows") {
			if harness.Num(r, "difference") != 0 {
				return false
			}
		}
		return len(harness.List(st, "database", "rows")) > 0
	})
	if lat := harness.Num(status, "totals", "latency_ms", "end_to_end", "count"); lat < total {
		t.Errorf("end_to_end latency count %d, want >= %d", lat, total)
	}
	for _, a := range agents {
		a.Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, a, 30*time.Second)
	}
	harness.Eventually(t, 10*time.Second, "nodes stopped", func() bool {
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			if n["liveness"] != "stopped" {
				return false
			}
		}
		return true
	})
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
}

// TestCoordinatorKill9: the coordinator is killed (SIGKILL) while agents
// work and restarted on the same data directory; agents reconnect and
// replay what it had not made durable. Final counts are identical to
// river_job and nothing is counted twice.
func TestCoordinatorKill9(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	env := []string{"TRIBUTARY_SECRET=" + secret}
	coord := harness.StartCoordinator(t, env, "--data-dir", t.TempDir(), "--snapshot-interval", "1s")
	for i := 1; i <= 2; i++ {
		clusterAgent(t, dbURL, coord, secret, fmt.Sprintf("k%d", i), "kq", filepath.Join(t.TempDir(), "outbox"), "")
	}
	const total = 12000
	for i := 0; i < total/500; i++ {
		insertJobs(t, conn, 500, "tributary.sleep", `{"ms": 5}`, "kq", 25)
		time.Sleep(100 * time.Millisecond)
		if i == 8 {
			coord.Kill()
			<-coord.Done()
			t.Logf("coordinator killed after %d jobs inserted", (i+1)*500)
		}
		if i == 14 {
			coord.Restart(t)
			t.Log("coordinator restarted")
		}
	}
	harness.Eventually(t, 120*time.Second, "all jobs completed", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == total
	})
	checkNothingLost(t, coord, conn, total)
	harness.Eventually(t, 20*time.Second, "outboxes drained", func() bool {
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			s, _ := n["sample"].(map[string]any)
			if s == nil || harness.Num(s, "outbox_events") != 0 {
				return false
			}
		}
		return true
	})
}

// TestCoordinatorAgentKill9: an agent is killed (SIGKILL) mid-run and
// restarted with the same node id and outbox: its outboxed events arrive,
// the jobs it was running are rescued and worked again, and the final
// counts equal river_job.
func TestCoordinatorAgentKill9(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret}, "--data-dir", t.TempDir())
	// A job timeout below the rescue window, else River's rule extends the
	// window by the timeout plus an hour.
	rescue := "maintenance:\n  rescuer_interval: 500ms\n  rescue_stuck_jobs_after: 3s\n  scheduler_interval: 500ms\n"
	timeout := "    job_timeout: 2s\n"
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	clusterAgent(t, dbURL, coord, secret, "ka", "aq", outA, rescue, timeout)
	b := clusterAgent(t, dbURL, coord, secret, "kb", "aq", outB, rescue, timeout)
	const total = 6000
	for i := 0; i < 6; i++ {
		insertJobs(t, conn, 1000, "tributary.sleep", `{"ms": 100}`, "aq", 25)
	}
	harness.Eventually(t, 60*time.Second, "some jobs completed", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) > 1500
	})
	b.Kill()
	<-b.Done()
	running := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[cardinality(attempted_by)] LIKE 'kb-%'`)
	t.Logf("agent kb killed with %d jobs running", running)
	time.Sleep(time.Second)
	clusterAgent(t, dbURL, coord, secret, "kb", "aq", outB, rescue, timeout)
	harness.Eventually(t, 120*time.Second, "all jobs completed", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == total
	})
	checkNothingLost(t, coord, conn, total)
	if rescued := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE attempt > 1`); rescued < running {
		t.Errorf("%d jobs ran more than once, want at least the %d the killed agent was running", rescued, running)
	}
}

// TestCoordinatorHostileFrames: malformed, truncated, oversized,
// amplifying, unknown, unauthenticated and replayed frames, and a wrong
// secret, sent to the agents' address: each rejected and counted, the
// connection kept, and a real agent's stream unaffected. An agent with the
// wrong secret is refused and says why.
func TestCoordinatorHostileFrames(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	env := []string{"TRIBUTARY_SECRET=" + secret}
	coord := harness.StartCoordinator(t, env)
	clusterAgent(t, dbURL, coord, secret, "good", "hq", filepath.Join(t.TempDir(), "outbox"), "")
	bad := clusterAgent(t, dbURL, coord, "wrong-"+secret, "intruder", "other", filepath.Join(t.TempDir(), "outbox"), "")
	insertJobs(t, conn, 2000, "tributary.noop", `{}`, "hq", 25)

	poke := harness.Start(t, harness.Bin(t, "trib-wirepoke"), []string{coord.Listen,
		"garbage", "truncated", "amplify", "oversized", "unknown_type", "batch_no_auth",
		"wrong_secret", "good_auth", "after"}, env)
	if code := poke.Wait(60 * time.Second); code != 0 {
		t.Fatalf("trib-wirepoke exited %d", code)
	}
	want := map[string]string{
		"garbage":        `"reply":"ERROR","code":-71`,
		"truncated":      `"reply":"ERROR","code":-71`,
		"amplify":        `"reply":"ERROR","code":-34`,
		"oversized":      `"reply":"ERROR","code":-34`,
		"unknown_type":   `"reply":"ERROR","code":-4009`,
		"batch_no_auth":  `"reply":"ERROR","code":-4010`,
		"wrong_secret":   `"reply":"ERROR","code":-4010`,
		"good_auth":      `"reply":"WELCOME"`,
		"batch":          `"reply":"ACK"`,
		"replayed_batch": `"reply":"ACK"`,
		"after":          `"reply":"CHALLENGE"`,
	}
	got := map[string]string{}
	for _, l := range poke.Lines() {
		var c struct {
			Case string `json:"case"`
		}
		if json.Unmarshal([]byte(l), &c) == nil {
			got[c.Case] = l
		}
	}
	for c, w := range want {
		if !strings.Contains(got[c], w) {
			t.Errorf("case %s: reply %q, want %s", c, got[c], w)
		}
	}
	harness.WaitForStderrLine(t, bad, "authentication", 20*time.Second)

	harness.Eventually(t, 60*time.Second, "the good agent's 2,000 jobs counted", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == 2000
	})
	var status map[string]any
	harness.Eventually(t, 30*time.Second, "event view complete", func() bool {
		status = coord.Query(t, "status", "--queue", "hq")
		return harness.Num(status, "totals", "finished") == 2000
	})
	if n := harness.Num(status, "coordinator", "frames_rejected"); n < 5 {
		t.Errorf("frames_rejected %d, want >= 5", n)
	}
	if n := harness.Num(status, "coordinator", "auth_failures"); n < 2 {
		t.Errorf("auth_failures %d, want >= 2 (wirepoke + the intruder agent)", n)
	}
	if n := harness.Num(status, "coordinator", "duplicates"); n < 1 {
		t.Errorf("duplicates %d, want >= 1 (the replayed batch)", n)
	}
	for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
		if n["node"] == "intruder" {
			t.Errorf("the agent with the wrong secret was accepted: %v", n)
		}
	}
}

// TestCoordinatorAgentKillLoop: DESIGN-NOTES 1, the crash window between a
// write-back's commit and its events. One agent is killed (SIGKILL) five
// times while it completes short jobs and restarted on the same outbox each
// time; another agent keeps working beside it. Whatever instant each kill
// hit, the coordinator's counts equal river_job's and nothing is counted
// twice.
func TestCoordinatorAgentKillLoop(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret}, "--data-dir", t.TempDir())
	rescue := "maintenance:\n  rescuer_interval: 500ms\n  rescue_stuck_jobs_after: 3s\n  scheduler_interval: 500ms\n"
	timeout := "    job_timeout: 2s\n"
	outA, outV := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "v")
	clusterAgent(t, dbURL, coord, secret, "steady", "lq", outA, rescue, timeout)
	victim := clusterAgent(t, dbURL, coord, secret, "victim", "lq", outV, rescue, timeout)
	const total = 8000
	for i := 0; i < 8; i++ {
		insertJobs(t, conn, 1000, "tributary.sleep", `{"ms": 100}`, "lq", 25)
	}
	for k := 0; k < 5; k++ {
		time.Sleep(time.Duration(300+100*k) * time.Millisecond)
		victim.Kill()
		<-victim.Done()
		t.Logf("victim killed with %d of %d jobs completed", harness.QueryInt(t, conn,
			`SELECT count(*) FROM river_job WHERE state = 'completed'`), total)
		victim = clusterAgent(t, dbURL, coord, secret, "victim", "lq", outV, rescue, timeout)
	}
	harness.Eventually(t, 120*time.Second, "all jobs completed", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == total
	})
	checkNothingLost(t, coord, conn, total)
}

// TestCoordinatorEventsSlowReader: `tributary events` is the cluster-wide
// subscription; a reader that falls behind the coordinator's ring (here 16
// events; the reader's stdout is not drained while 3,000 jobs finish) is
// told exactly how many events it missed: printed events + reported missed
// = every event applied, and no event is printed twice.
func TestCoordinatorEventsSlowReader(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret}, "--events-ring", "16")
	clusterAgent(t, dbURL, coord, secret, "ev", "eq", filepath.Join(t.TempDir(), "outbox"), "")

	cmd := exec.Command(harness.Bin(t, "tributary"), "events", "--control", coord.Control)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(500 * time.Millisecond) // its first request sets "from now"

	const total = 3000
	insertJobs(t, conn, total, "tributary.noop", `{}`, "eq", 25)
	if _, errs, code := coord.CLI(t, 90*time.Second, "wait", "--count", fmt.Sprint(total), "--timeout", "60s", "--quiet"); code != 0 {
		t.Fatalf("wait: exit %d: %s", code, errs)
	}
	// Only now read what the reader printed (it blocked on the full pipe).
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var printed, missed int64
	cursors := map[int64]bool{}
	deadline := time.After(30 * time.Second)
	for printed+missed < total {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tributary events ended after %d events + %d missed", printed, missed)
			}
			var e struct {
				Missed *int64 `json:"missed"`
				Cursor *int64 `json:"cursor"`
				Event  string `json:"event"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			switch {
			case e.Missed != nil:
				missed += *e.Missed
			case e.Cursor != nil && e.Event == "job_completed":
				if cursors[*e.Cursor] {
					t.Errorf("cursor %d printed twice", *e.Cursor)
				}
				cursors[*e.Cursor] = true
				printed++
			default:
				t.Errorf("unexpected line %q", l)
			}
		case <-deadline:
			t.Fatalf("after 30 s: %d events printed + %d reported missed, want %d", printed, missed, total)
		}
	}
	if printed+missed != total || missed == 0 {
		t.Errorf("%d printed + %d missed, want %d with some missed (ring of 16)", printed, missed, total)
	}
	t.Logf("slow reader: %d events printed, %d reported missed", printed, missed)
}

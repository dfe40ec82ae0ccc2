package integration

// The coordinator's polling view (docs/POLLING.md) against a real
// river_job: the database's numbers beside the event view, with every
// difference explained -- rows finalized before the coordinator started,
// by River's own Go client (a client the coordinator never saw), without
// ever being worked, or by the rescuer -- and cumulative counts that
// survive River's cleaner. Self-contained: its helpers are prefixed "pv".

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tributary/tests/harness"
)

// pvAgent starts an agent with one notify client "<node>-c1" on queue,
// forwarding to coord.
func pvAgent(t *testing.T, dbURL string, coord *harness.Coordinator, secret, node, queue string) *harness.Proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), node+".yaml")
	yaml := "log_level: info\nclients:\n  - id: " + node + "-c1\n    mode: notify\n    queues: [\"" + queue + ":20\"]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, harness.Bin(t, "tributary-agent"), []string{
		"--database-url", dbURL, "--config", cfg, "--node-id", node,
		"--coordinator", coord.Listen, "--outbox-dir", t.TempDir(),
	}, []string{"TRIBUTARY_SECRET=" + secret})
	t.Cleanup(func() {
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("agent %s: sanitizer report: %s", node, r)
		}
	})
	return p
}

func pvSecret(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func pvExec(t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pvReason returns the count of a difference reason (0 when absent).
func pvReason(db map[string]any, reason string) int64 {
	for _, d := range harness.List(db, "differences") {
		if d["reason"] == reason {
			return harness.Num(d, "count")
		}
	}
	return 0
}

// pvRows maps the database view's rows to (database, events).
func pvRows(db map[string]any) map[qksPV][2]int64 {
	out := map[qksPV][2]int64{}
	for _, r := range harness.List(db, "rows") {
		q, _ := r["queue"].(string)
		k, _ := r["kind"].(string)
		s, _ := r["state"].(string)
		out[qksPV{q, k, s}] = [2]int64{harness.Num(r, "database"), harness.Num(r, "events")}
	}
	return out
}

type qksPV struct{ queue, kind, state string }

// pvTable counts the final rows of queues pv and pvgo per (queue, kind,
// state), split into all rows and rows whose last attempted_by is not
// goClient.
func pvTable(t *testing.T, c *pgx.Conn, goClient string) (all, trib map[qksPV]int64) {
	t.Helper()
	rows, err := c.Query(context.Background(), `SELECT queue, kind, state::text, count(*),
		count(*) FILTER (WHERE attempted_by[cardinality(attempted_by)] <> $1)
		FROM river_job WHERE queue IN ('pv', 'pvgo') AND state IN ('completed', 'discarded', 'cancelled')
		GROUP BY 1, 2, 3`, goClient)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	all, trib = map[qksPV]int64{}, map[qksPV]int64{}
	for rows.Next() {
		var k qksPV
		var n, m int64
		if err := rows.Scan(&k.queue, &k.kind, &k.state, &n, &m); err != nil {
			t.Fatal(err)
		}
		all[k], trib[k] = n, m
	}
	return all, trib
}

func pvJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCoordinatorPollView: the first poll counts the history once; then a
// Tributary agent and River's Go client work the same queue, and the
// database view equals river_job per (queue, kind, state), its events
// column equals the Tributary-worked rows, and every difference is
// explained (unknown clients, never worked, rescued; nothing unexplained,
// nothing left in transit). Deleting the finalized rows (River's cleaner)
// leaves the cumulative counts as they were.
func TestCoordinatorPollView(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)

	// History: an hour-old run by a Go client, jobs cancelled before they
	// ran, and jobs the rescuer discarded (their last error is the rescue).
	pvExec(t, conn, `INSERT INTO river_job (state, attempt, attempted_at, finalized_at, args, attempted_by, kind, queue)
		SELECT 'completed', 1, now() - interval '1 hour', now() - interval '1 hour' + i * interval '1 ms', '{}',
		       ARRAY['old-go-client'], 'tributary.noop', 'hist' FROM generate_series(1, 300) i`)
	pvExec(t, conn, `INSERT INTO river_job (state, finalized_at, args, kind, queue)
		SELECT 'cancelled', now() - interval '10 minutes', '{}', 'tributary.noop', 'hist' FROM generate_series(1, 20)`)
	pvExec(t, conn, `INSERT INTO river_job (state, attempt, max_attempts, attempted_at, finalized_at, args, attempted_by, errors, kind, queue)
		SELECT 'discarded', 1, 1, now() - interval '2 hours', now() - interval '30 minutes', '{}', ARRAY['gone-agent-c1'],
		       ARRAY['{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "Stuck job rescued by JobRescuer", "trace": ""}'::jsonb],
		       'tributary.sleep', 'hist' FROM generate_series(1, 5)`)

	secret := pvSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret},
		"--database-url", dbURL, "--poll-interval", "200ms")

	var db map[string]any
	harness.Eventually(t, 20*time.Second, "the first poll", func() bool {
		db, _ = coord.Query(t, "status")["database"].(map[string]any)
		_, polled := db["polled_at"].(string)
		return polled
	})
	if db["error"] != nil {
		t.Fatalf("database error after the first poll: %v", db["error"])
	}
	if c, d, x := harness.Num(db, "states", "completed"), harness.Num(db, "states", "discarded"),
		harness.Num(db, "states", "cancelled"); c != 300 || d != 5 || x != 20 {
		t.Fatalf("first poll: completed %d discarded %d cancelled %d, want 300 5 20: %s", c, d, x, pvJSON(db))
	}
	if pvReason(db, "unknown_clients") != 300 || pvReason(db, "not_worked") != 20 ||
		pvReason(db, "rescued") != 5 || pvReason(db, "unexplained") != 0 {
		t.Fatalf("first poll differences: %s", pvJSON(db["differences"]))
	}
	if cl := harness.List(db, "differences"); len(cl) == 0 ||
		!strings.Contains(pvJSON(cl), `"client":"old-go-client"`) {
		t.Errorf("unknown clients not listed: %s", pvJSON(cl))
	}

	// A Tributary agent and River's Go client share queue pv; queue pvgo
	// is the Go client's alone.
	const goClient = "go-pv-1"
	agent := pvAgent(t, dbURL, coord, secret, "pv1", "pv")
	goWorker := harness.Start(t, harness.Bin(t, "riverworker"), []string{
		"--database-url", dbURL, "--queue", "pv:20", "--queue", "pvgo:20", "--id", goClient}, nil)
	harness.InsertBulk(t, conn, 3000, 500, "tributary.noop", `{}`, "pv")
	harness.InsertBulk(t, conn, 200, 200, "tributary.noop", `{}`, "pvgo")
	fails := make([]harness.JobSpec, 200)
	for i := range fails {
		fails[i] = harness.JobSpec{Kind: "tributary.fail", Args: `{"message": "pv declined"}`, Queue: "pv", MaxAttempts: 1}
	}
	harness.InsertJobs(t, conn, fails...)
	harness.Eventually(t, 120*time.Second, "all pv and pvgo jobs finalized", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE queue IN ('pv', 'pvgo')
			AND state IN ('completed', 'discarded', 'cancelled')`) == 3400
	})
	all, trib := pvTable(t, conn, goClient)
	var goRows, tribRows int64
	for k, n := range all {
		goRows += n - trib[k]
		tribRows += trib[k]
	}
	if goRows == 0 || tribRows == 0 {
		t.Fatalf("want both workers to finalize jobs: Go %d, Tributary %d", goRows, tribRows)
	}
	t.Logf("pv, pvgo: %d rows finalized by the agent, %d by River's Go client", tribRows, goRows)

	// Settled: database = river_job, events = Tributary rows, and the
	// differences are exactly the unknown clients' rows plus the history.
	var last string
	harness.Eventually(t, 30*time.Second, "database view settled and explained", func() bool {
		db, _ = coord.Query(t, "status")["database"].(map[string]any)
		last = pvJSON(db)
		rows := pvRows(db)
		for k, n := range all {
			if rows[k] != [2]int64{n, trib[k]} {
				return false
			}
		}
		return pvReason(db, "unknown_clients") == 300+goRows &&
			pvReason(db, "events_in_transit") == 0 &&
			pvReason(db, "events_without_rows") == 0 &&
			pvReason(db, "unexplained") == 0
	})
	if db["error"] != nil {
		t.Errorf("database error: %v", db["error"])
	}
	if !strings.Contains(pvJSON(db["differences"]), `"client":"`+goClient+`"`) {
		t.Errorf("River's Go client not listed among unknown clients: %s", pvJSON(db["differences"]))
	}
	// The reasons add up to the rows' differences.
	var sumDiff int64
	for _, r := range harness.List(db, "rows") {
		sumDiff += harness.Num(r, "difference")
	}
	if want := pvReason(db, "unknown_clients") + pvReason(db, "not_worked") + pvReason(db, "rescued"); sumDiff != want {
		t.Errorf("rows differ by %d in total, reasons explain %d: %s", sumDiff, want, last)
	}
	if n := harness.Num(db, "states", "completed") + harness.Num(db, "states", "discarded") +
		harness.Num(db, "states", "cancelled"); n != 325+3400 {
		t.Errorf("database final states %d, want %d", n, 325+3400)
	}

	// River's cleaner deletes finalized rows: the cumulative counts stay.
	before := pvJSON(db["rows"])
	polls := harness.Num(db, "polls", "ok")
	pvExec(t, conn, `DELETE FROM river_job WHERE state IN ('completed', 'discarded', 'cancelled')`)
	harness.Eventually(t, 20*time.Second, "three more polls", func() bool {
		db, _ = coord.Query(t, "status")["database"].(map[string]any)
		return harness.Num(db, "polls", "ok") >= polls+3
	})
	if after := pvJSON(db["rows"]); after != before {
		t.Errorf("rows changed after the cleaner:\nbefore %s\nafter  %s", before, after)
	}

	// Filters: the queue filter applies; the node filter cannot.
	st := coord.Query(t, "status", "--queue", "pv", "--node", "pv1")
	pdb, _ := st["database"].(map[string]any)
	for _, r := range harness.List(pdb, "rows") {
		if r["queue"] != "pv" {
			t.Errorf("--queue pv: row of queue %v", r["queue"])
		}
	}
	if pdb["node_filter_ignored"] != true || pvReason(pdb, "rescued") != 0 {
		t.Errorf("filtered database view: %s", pvJSON(pdb))
	}

	goWorker.Signal(syscall.SIGTERM)
	agent.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, agent, 30*time.Second)
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
}

// TestCoordinatorPollSchemaMissing: a database without River's tables
// shows an error that says what to do, and the view starts counting once
// the schema exists (no restart).
func TestCoordinatorPollSchemaMissing(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewDB(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + pvSecret(t)},
		"--database-url", dbURL, "--poll-interval", "200ms")
	var db map[string]any
	harness.Eventually(t, 20*time.Second, "an error naming the fix", func() bool {
		db, _ = coord.Query(t, "status")["database"].(map[string]any)
		e, _ := db["error"].(string)
		return strings.Contains(e, "migrate up")
	})
	if db["polled_at"] != nil || len(harness.List(db, "rows")) != 0 {
		t.Errorf("not polled yet, but: %s", pvJSON(db))
	}
	harness.MigrateRiver(t, dbURL)
	harness.Eventually(t, 20*time.Second, "counting after the migration", func() bool {
		db, _ = coord.Query(t, "status")["database"].(map[string]any)
		_, polled := db["polled_at"].(string)
		return polled && db["error"] == nil
	})
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
}

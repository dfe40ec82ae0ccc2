package integration

// `tributary stress` end to end: a real coordinator, real agents (notify
// and poll clients on separate queues), a real PostgreSQL. The report's
// counts and failure groups must equal river_job's; no job may start
// before it was due; thresholds, timeouts, Ctrl-C and bad plans must give
// their exit codes; the HTML report must render with non-empty charts.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// mixedAgent starts an agent with a notify client on nq and a poll client
// on pq, forwarding to coord.
func mixedAgent(t *testing.T, dbURL string, coord *harness.Coordinator, secret, node, nq, pq string) *harness.Proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), node+".yaml")
	yaml := `log_level: info
leader:
  elect_interval: 500ms
  ttl: 3s
clients:
  - id: ` + node + `-notify
    mode: notify
    queues: ["` + nq + `:50"]
  - id: ` + node + `-poll
    mode: poll
    poll_interval: 300ms
    queues: ["` + pq + `:50"]
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := harness.Start(t, harness.Bin(t, "tributary-agent"), []string{
		"--database-url", dbURL, "--config", cfg, "--node-id", node,
		"--coordinator", coord.Listen, "--outbox-dir", filepath.Join(t.TempDir(), "outbox"),
	}, []string{"TRIBUTARY_SECRET=" + secret})
	t.Cleanup(func() {
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("agent %s: sanitizer report: %s", node, r)
		}
	})
	return p
}

type stressEnv struct {
	dbURL string
	coord *harness.Coordinator
}

// stress runs `tributary stress` with args and returns stdout, stderr and
// the exit code; the coordinator comes from TRIBUTARY_CONTROL.
func (e *stressEnv) stress(t *testing.T, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	p := harness.Start(t, harness.Bin(t, "tributary"), append([]string{"stress", "--database-url", e.dbURL}, args...),
		[]string{"TRIBUTARY_CONTROL=" + e.coord.Control})
	code := p.Wait(timeout)
	if r := harness.SanitizerReport(p); r != "" {
		t.Errorf("tributary stress: sanitizer report: %s", r)
	}
	return p.Stdout(), p.Stderr(), code
}

func readReport(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if doc["schema"] != "tributary.stress.report/1" {
		t.Fatalf("report.json schema %v", doc["schema"])
	}
	return doc
}

func runID(t *testing.T, doc map[string]any) string {
	t.Helper()
	run, _ := doc["run"].(map[string]any)
	id, _ := run["id"].(string)
	if id == "" {
		t.Fatalf("report without run.id: %v", run)
	}
	return id
}

func startStressCluster(t *testing.T, coordArgs ...string) *stressEnv {
	t.Helper()
	dbURL := harness.NewRiverDB(t)
	secret := newSecret(t)
	coord := harness.StartCoordinator(t, []string{"TRIBUTARY_SECRET=" + secret},
		append([]string{"--database-url", dbURL, "--poll-interval", "500ms"}, coordArgs...)...)
	for i := 1; i <= 2; i++ {
		mixedAgent(t, dbURL, coord, secret, fmt.Sprintf("st%d", i), "sn", "sp")
	}
	harness.Eventually(t, 20*time.Second, "two agents alive", func() bool {
		alive := 0
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			if n["liveness"] == "alive" {
				alive++
			}
		}
		return alive == 2
	})
	return &stressEnv{dbURL: dbURL, coord: coord}
}

// TestStressRun: three stages (a count at a rate, a ramp, a count as fast
// as possible), jobs due 2-3 s after insertion, ~10 % failing, the mixed
// preset. The report equals river_job; nothing started early; thresholds
// pass; the HTML renders with charts.
func TestStressRun(t *testing.T) {
	t.Parallel()
	e := startStressCluster(t)
	conn := harness.Connect(t, e.dbURL)
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte(`name: it-three-stages
jobs:
  kind: tributary.fail
  args: {probability: 0.1, message: "card 4242 declined"}
  max_attempts: 1
  delay: 2s
  spread: 1s
mixed: {notify_queue: sn, poll_queue: sp}
insert: {batch: 200}
stages:
  - {name: steady, count: 1000, rate: 500}
  - {name: ramp, duration: 2s, target: 1500}
  - {name: burst, count: 1000}
timeout: 3m
thresholds:
  - failed_rate < 50%
  - throughput > 1/s
  - p99(end_to_end) < 60s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	stdout, stderr, code := e.stress(t, 200*time.Second, "--plan", plan, "--out", out)
	if code != 0 {
		t.Fatalf("tributary stress exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, filepath.Join(out, "report.html")) {
		t.Errorf("the summary does not end with the report's path:\n%s", stdout)
	}
	doc := readReport(t, out)
	id := runID(t, doc)
	meta := fmt.Sprintf(`{"tributary": {"run": %q}}`, id)

	// Every job of the run accounted for, none twice.
	dbTotal := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb`, meta)
	wantTotal := int64(1000 + 1000 + 2*(500+1500)/2) // 1000 + ramp 500->1500 over 2 s + 1000
	if dbTotal != wantTotal {
		t.Errorf("river_job holds %d jobs of the run, want %d", dbTotal, wantTotal)
	}
	counts := func(k string) int64 { return harness.Num(doc, "counts", k) }
	if counts("inserted") != dbTotal || counts("finished") != dbTotal || counts("unfinished") != 0 {
		t.Errorf("report counts %v, river_job %d jobs", doc["counts"], dbTotal)
	}
	for _, st := range []string{"completed", "discarded", "cancelled"} {
		db := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb AND state = $2`, meta, st)
		if counts(st) != db {
			t.Errorf("%s: report %d, river_job %d", st, counts(st), db)
		}
	}
	discarded := counts("discarded")
	if discarded < wantTotal/20 || discarded > wantTotal/5 {
		t.Errorf("%d discarded of %d, want ~10 %%", discarded, wantTotal)
	}
	// Per stage, as inserted.
	stages, _ := doc["stages"].([]any)
	if len(stages) != 3 {
		t.Fatalf("%d stages in the report, want 3", len(stages))
	}
	for i, s := range stages {
		sm := s.(map[string]any)
		db := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb
			AND (metadata->'tributary'->>'stage')::int = $2`, meta, i)
		if harness.Num(sm, "inserted") != db || harness.Num(sm, "finished") != db {
			t.Errorf("stage %d: report inserted %d finished %d, river_job %d", i, harness.Num(sm, "inserted"), harness.Num(sm, "finished"), db)
		}
	}
	// Failure groups equal the database's errors.
	dbErrors := harness.QueryInt(t, conn, `SELECT coalesce(sum(cardinality(errors)), 0) FROM river_job WHERE metadata @> $1::jsonb`, meta)
	failures := harness.List(doc, "failures")
	if len(failures) != 1 {
		t.Fatalf("failure groups %v, want one (\"card N declined\")", failures)
	}
	if failures[0]["error"] != "card N declined" || harness.Num(failures[0], "attempts") != dbErrors ||
		harness.Num(failures[0], "discarded") != discarded || harness.Num(failures[0], "jobs") != discarded {
		t.Errorf("failure group %v, want \"card N declined\" with %d attempts, %d jobs discarded", failures[0], dbErrors, discarded)
	}
	// Nothing started before it was due (the original due time is in the
	// metadata; scheduled_at too for a first attempt).
	early := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb AND
		(attempted_at < to_timestamp((metadata->'tributary'->>'due_us')::bigint / 1e6)
		 OR (attempt = 1 AND attempted_at < scheduled_at))`, meta)
	if early != 0 || counts("started_early") != 0 {
		t.Errorf("%d jobs (report: %d) started before they were due", early, counts("started_early"))
	}
	minDelay := harness.QueryInt(t, conn, `SELECT (min(extract(epoch from scheduled_at - created_at)) * 1000)::bigint
		FROM river_job WHERE metadata @> $1::jsonb AND attempt <= 1`, meta)
	if minDelay < 1990 {
		t.Errorf("smallest delay %d ms, want >= 2000", minDelay)
	}
	// Monitors agree; both modes served their queue.
	if mon, _ := doc["monitors"].(map[string]any); mon["agree"] != true {
		t.Errorf("monitors disagree: %v", mon)
	}
	mixed, _ := doc["mixed"].(map[string]any)
	for _, m := range []string{"notify", "poll"} {
		mm, _ := mixed[m].(map[string]any)
		if harness.Num(mm, "finished") == 0 {
			t.Errorf("mixed.%s: %v", m, mm)
		}
	}
	if doc["thresholds_passed"] != true || len(harness.List(doc, "thresholds")) != 3 {
		t.Errorf("thresholds %v", doc["thresholds"])
	}
	if lat := harness.Num(doc, "latency_ms", "end_to_end", "count"); lat != dbTotal {
		t.Errorf("end_to_end count %d, want %d", lat, dbTotal)
	}

	// The HTML report renders offline with non-empty charts.
	html, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"http://", "https://", "<script src", "<link "} {
		if strings.Contains(string(html), bad) {
			t.Errorf("report.html is not self-contained: contains %q", bad)
		}
	}
	png := filepath.Join(dir, "report.png")
	harness.Screenshot(t, filepath.Join(out, "report.html"), png, 1400, 5000)
	st := harness.Pixels(t, png)
	t.Logf("screenshot: %d coloured pixels in %d rows", st.Colored, st.ColoredRows)
	// Charts are drawn in colour (series, bars); a page of empty chart
	// frames and text is gray. Coloured ink spread over many rows means
	// the charts hold data, not just a coloured heading.
	if st.Colored < 20000 || st.ColoredRows < 800 {
		t.Errorf("the report's screenshot has %d coloured pixels in %d rows: charts empty?", st.Colored, st.ColoredRows)
	}

	// `tributary report` renders the saved run again, and compares.
	rep := harness.Start(t, harness.Bin(t, "tributary"), []string{"report", out, "--no-color"}, nil)
	if c := rep.Wait(30 * time.Second); c != 0 || !strings.Contains(rep.Stdout(), id) {
		t.Errorf("tributary report exited %d:\n%s\n%s", c, rep.Stdout(), rep.Stderr())
	}
	cmp := harness.Start(t, harness.Bin(t, "tributary"), []string{"report", "--compare", out, out, "--no-color"}, nil)
	if c := cmp.Wait(30 * time.Second); c != 0 {
		t.Errorf("tributary report --compare exited %d:\n%s\n%s", c, cmp.Stdout(), cmp.Stderr())
	}
}

// TestStressExitCodes: a failing threshold exits 3, a timeout 4, Ctrl-C
// 130 with a report of what happened, a bad plan 2 with file:line:col.
func TestStressExitCodes(t *testing.T) {
	t.Parallel()
	e := startStressCluster(t)
	conn := harness.Connect(t, e.dbURL)
	dir := t.TempDir()

	// A threshold no run can meet.
	out := filepath.Join(dir, "thr")
	so, se, code := e.stress(t, 120*time.Second, "--jobs", "300", "--queue", "sn", "--out", out,
		"--threshold", "p99(end_to_end) < 1us", "--threshold", "failed_rate < 1%")
	if code != 3 {
		t.Fatalf("failing threshold: exit %d, want 3\n%s\n%s", code, so, se)
	}
	doc := readReport(t, out)
	thr := harness.List(doc, "thresholds")
	if doc["thresholds_passed"] != false || len(thr) != 2 || thr[0]["pass"] != false || thr[1]["pass"] != true {
		t.Errorf("thresholds %v", thr)
	}

	// Jobs on a queue nobody serves: the timeout passes.
	out = filepath.Join(dir, "timeout")
	so, se, code = e.stress(t, 60*time.Second, "--jobs", "20", "--queue", "nobody", "--timeout", "3s", "--out", out)
	if code != 4 {
		t.Fatalf("timeout: exit %d, want 4\n%s\n%s", code, so, se)
	}
	doc = readReport(t, out)
	if run, _ := doc["run"].(map[string]any); run["outcome"] != "timeout" || harness.Num(doc, "counts", "unfinished") != 20 {
		t.Errorf("timeout report: run %v counts %v", doc["run"], doc["counts"])
	}

	// Ctrl-C while inserting: stops inserting, follows what went in,
	// reports, exits 130; the report still equals river_job.
	out = filepath.Join(dir, "int")
	p := harness.Start(t, harness.Bin(t, "tributary"), []string{"stress", "--database-url", e.dbURL,
		"--jobs", "200000", "--rate", "1000", "--queue", "sn", "--grace", "20s", "--out", out},
		[]string{"TRIBUTARY_CONTROL=" + e.coord.Control})
	time.Sleep(3 * time.Second)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(60 * time.Second); code != 130 {
		t.Fatalf("Ctrl-C: exit %d, want 130\n%s\n%s", code, p.Stdout(), p.Stderr())
	}
	doc = readReport(t, out)
	meta := fmt.Sprintf(`{"tributary": {"run": %q}}`, runID(t, doc))
	dbTotal := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb`, meta)
	dbFinished := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb AND finalized_at IS NOT NULL`, meta)
	if run, _ := doc["run"].(map[string]any); run["outcome"] != "interrupted" {
		t.Errorf("outcome %v, want interrupted", run["outcome"])
	}
	if n := harness.Num(doc, "counts", "inserted"); n != dbTotal || n == 0 || n >= 200000 {
		t.Errorf("inserted %d, river_job %d (want 0 < n < 200000)", n, dbTotal)
	}
	if n := harness.Num(doc, "counts", "finished"); n != dbFinished {
		t.Errorf("finished %d, river_job %d", n, dbFinished)
	}

	// Bad plans: precise errors, exit 2, nothing inserted.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\nstages:\n  - {duration: 5s, target: 100}\n  - {duration: 5s, target: fast}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, se, code = e.stress(t, 30*time.Second, "--plan", bad)
	if code != 2 || !strings.Contains(se, "bad.yaml:4:") || !strings.Contains(se, "stages[1].target") {
		t.Errorf("bad plan: exit %d, stderr %q; want 2 and bad.yaml:4:COL: stages[1].target", code, se)
	}
	_, se, code = e.stress(t, 30*time.Second, "--jobs", "10", "--threshold", "p95(latency) < 2s")
	if code != 2 || !strings.Contains(se, "latency") {
		t.Errorf("bad threshold: exit %d, stderr %q", code, se)
	}
	_, se, code = e.stress(t, 30*time.Second, "--jobs", "ten")
	if code != 2 || !strings.Contains(se, "--jobs") {
		t.Errorf("bad --jobs: exit %d, stderr %q", code, se)
	}
}

// TestStressSlowReader: the coordinator keeps only 32 events in its ring,
// so this run's reader misses most of them. The run still ends when the
// last job finishes (the coordinator's exact per-tag count stands in for
// the missed events), the monitors agree on that basis, and the report's
// counts still equal river_job (the rows are read at the end).
func TestStressSlowReader(t *testing.T) {
	t.Parallel()
	e := startStressCluster(t, "--events-ring", "32")
	conn := harness.Connect(t, e.dbURL)
	out := filepath.Join(t.TempDir(), "run")
	so, se, code := e.stress(t, 120*time.Second, "--jobs", "3000", "--queue", "sn", "--kind", "tributary.fail",
		"--args", `{"probability": 0.1}`, "--max-attempts", "1", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, so, se)
	}
	doc := readReport(t, out)
	mon, _ := doc["monitors"].(map[string]any)
	ev, _ := mon["events"].(map[string]any)
	if harness.Num(ev, "events_missed") == 0 || ev["basis"] != "coordinator_count" || mon["agree"] != true {
		t.Errorf("monitors %v: want events missed, basis coordinator_count, agree", mon)
	}
	meta := fmt.Sprintf(`{"tributary": {"run": %q}}`, runID(t, doc))
	for _, st := range []string{"completed", "discarded"} {
		db := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE metadata @> $1::jsonb AND state = $2`, meta, st)
		if n := harness.Num(doc, "counts", st); n != db {
			t.Errorf("%s: report %d, river_job %d", st, n, db)
		}
	}
	t.Logf("events seen %d, missed %d", harness.Num(ev, "events_seen"), harness.Num(ev, "events_missed"))
}

package integration

// How tributary-agent finds work: LISTEN/NOTIFY versus polling, and queue
// pause/resume (river-facts §1.4, §1.5).

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tributary/tests/harness"
)

// TestAgentFetchNotifyLatency: with a 10 s poll interval, a job inserted
// with its river_insert notification is started well within a second: the
// notification, not the poll, triggered the fetch.
func TestAgentFetchNotifyLatency(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgent(t, dbURL, "lat1", "--queue", "q:5", "--poll-interval", "10s", "--log-level", "debug")
	a.waitReady(t, "q", true)
	ready := time.Now()

	var ids []int64
	for i := 0; i < 5; i++ {
		id := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.noop", Queue: "q"})[0]
		ids = append(ids, id)
		j := harness.WaitState(t, conn, id, "completed", 3*time.Second)
		lat := j.AttemptedAt.Sub(j.CreatedAt)
		t.Logf("job %d: attempted_at - created_at = %s", id, lat)
		if lat < 0 || lat >= time.Second {
			t.Errorf("job %d started %s after its insert, want < 1s (notify)", id, lat)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if since := time.Since(ready); since > 9*time.Second {
		t.Fatalf("the inserts took %s: the 10 s poll may have fetched them", since)
	}
	a.stop(t, 20*time.Second)
	evs := a.events(t)
	for _, id := range ids {
		e := eventsFor(evs, id)
		if len(e) != 1 {
			t.Fatalf("job %d: events %+v", id, e)
		}
		checkEvent(t, e[0], "job_completed", "completed")
		if *e[0].QueueWaitMs >= 1000 {
			t.Errorf("job %d queue_wait_ms = %v", id, *e[0].QueueWaitMs)
		}
	}
}

// serverLog reads the test server's log from a byte offset, through SQL
// (pg_read_file; the test connects as a superuser). The log is
// pg_current_logfile() when the logging collector runs, else the file
// scripts/pg.sh sends the server's stderr to: <data_directory>/../server.log.
type serverLog struct {
	t    *testing.T
	conn *pgx.Conn
	path string
}

func openServerLog(t *testing.T, conn *pgx.Conn) *serverLog {
	t.Helper()
	ctx := context.Background()
	var cur *string
	if err := conn.QueryRow(ctx, `SELECT pg_current_logfile()`).Scan(&cur); err != nil {
		t.Fatalf("pg_current_logfile: %v", err)
	}
	var path string
	if cur != nil {
		path = *cur
		if !filepath.IsAbs(path) {
			var dd string
			_ = conn.QueryRow(ctx, `SHOW data_directory`).Scan(&dd)
			path = filepath.Join(dd, path)
		}
	} else {
		var dd string
		if err := conn.QueryRow(ctx, `SHOW data_directory`).Scan(&dd); err != nil {
			t.Fatalf("data_directory: %v", err)
		}
		path = filepath.Join(filepath.Dir(dd), "server.log")
	}
	l := &serverLog{t: t, conn: conn, path: path}
	if l.size() < 0 {
		t.Fatalf("cannot find the server log (tried %s): this test reads the statement log of the test server", path)
	}
	return l
}

func (l *serverLog) size() int64 {
	var n *int64
	if err := l.conn.QueryRow(context.Background(), `SELECT size FROM pg_stat_file($1, true)`, l.path).Scan(&n); err != nil || n == nil {
		return -1
	}
	return *n
}

// since returns the log lines written after offset 'from'.
func (l *serverLog) since(from int64) []string {
	l.t.Helper()
	var text string
	n := l.size() - from
	if n <= 0 {
		return nil
	}
	if err := l.conn.QueryRow(context.Background(), `SELECT pg_read_file($1, $2, $3)`, l.path, from, n).Scan(&text); err != nil {
		l.t.Fatalf("pg_read_file %s: %v", l.path, err)
	}
	return strings.Split(text, "\n")
}

var logPidRE = regexp.MustCompile(`\[(\d+)\]`)

// agentBackends samples pg_stat_activity until stop is closed: the backend
// pids of tributary-agent sessions in this database (the agent's own,
// application_name 'tributary-agent', and its clients', 'tributary-agent:<client
// id>'), the names seen, and whether any of them was seen with a LISTEN as
// its current/last statement.
type agentBackends struct {
	mu         sync.Mutex
	pids       map[int]bool
	apps       map[string]bool
	listenSeen []string
	maxConns   int
}

func sampleBackends(t *testing.T, dbURL string, stop <-chan struct{}, done chan<- *agentBackends) {
	c, err := pgx.Connect(context.Background(), dbURL)
	res := &agentBackends{pids: map[int]bool{}, apps: map[string]bool{}}
	if err != nil {
		t.Errorf("sampler connect: %v", err)
		done <- res
		return
	}
	defer c.Close(context.Background())
	for {
		rows, err := c.Query(context.Background(), `SELECT pid, query, application_name FROM pg_stat_activity
			WHERE datname = current_database()
			  AND (application_name = 'tributary-agent' OR application_name LIKE 'tributary-agent:%')`)
		if err == nil {
			n := 0
			for rows.Next() {
				var pid int
				var q, app string
				if rows.Scan(&pid, &q, &app) == nil {
					n++
					res.pids[pid] = true
					res.apps[app] = true
					if strings.Contains(strings.ToUpper(q), "LISTEN") {
						res.listenSeen = append(res.listenSeen, strconv.Itoa(pid)+": "+q)
					}
				}
			}
			rows.Close()
			if n > res.maxConns {
				res.maxConns = n
			}
		}
		select {
		case <-stop:
			done <- res
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestAgentFetchPollModeNoListen: a poll-mode agent never issues LISTEN,
// and still works its queue within about its poll interval.
//
// How "no LISTEN" is observed, from outside the agent: pg_listening_channels()
// only describes the calling session, so the test turns on the server's
// statement log for this test's database only (ALTER DATABASE ... SET
// log_statement = 'all') and reads the server log back (pg_read_file),
// keeping the lines of the agent's own backends (pids sampled from
// pg_stat_activity, application_name 'tributary-agent[:<client id>]'). The poll-mode run
// must log statements from those backends (so the check can see them) and
// none of them may contain LISTEN; pg_stat_activity must never show a
// LISTEN as an agent backend's query either. A notify-mode agent run the
// same way afterwards is the control: there both checks must find its LISTEN.
func TestAgentFetchPollModeNoListen(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	var dbName string
	if err := conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` SET log_statement = 'all'`); err != nil {
		t.Fatalf("enable the statement log: %v", err)
	}
	slog := openServerLog(t, conn)

	run := func(mode string) (backends *agentBackends, logLines []string, lats []time.Duration) {
		from := slog.size()
		stop := make(chan struct{})
		done := make(chan *agentBackends, 1)
		go sampleBackends(t, dbURL, stop, done)
		a := startAgent(t, dbURL, "mode-"+mode, "--queue", "q:5", "--mode", mode, "--poll-interval", "1s", "--log-level", "debug")
		a.waitReady(t, "q", mode == "notify")
		for i := 0; i < 5; i++ {
			id := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.noop", Queue: "q"})[0]
			j := harness.WaitState(t, conn, id, "completed", 5*time.Second)
			lats = append(lats, j.AttemptedAt.Sub(j.CreatedAt))
			time.Sleep(time.Duration(137*(i+1)) * time.Millisecond)
		}
		a.stop(t, 20*time.Second)
		close(stop)
		backends = <-done
		// Statement-log lines of the agent's backends.
		for _, l := range slog.since(from) {
			m := logPidRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[1]); backends.pids[pid] {
				logLines = append(logLines, l)
			}
		}
		return backends, logLines, lats
	}

	b, lines, lats := run("poll")
	t.Logf("poll mode: %d agent backends (at most %d at once) named %v, %d statement-log lines, latencies %v", len(b.pids), b.maxConns, b.apps, len(lines), lats)
	if len(b.pids) == 0 || len(grepLines(lines, "statement:"))+len(grepLines(lines, "execute")) == 0 {
		t.Fatalf("the statement log shows nothing from the agent's backends %v: the check would be blind", b.pids)
	}
	if l := grepLines(lines, "LISTEN"); len(l) > 0 {
		t.Errorf("poll-mode agent issued LISTEN:\n%s", strings.Join(l, "\n"))
	}
	if len(b.listenSeen) > 0 {
		t.Errorf("pg_stat_activity shows a poll-mode agent session with LISTEN: %v", b.listenSeen)
	}
	if b.maxConns > 4 {
		t.Errorf("poll-mode agent held %d connections, want at most 4 (control, fetch, completer, maintenance)", b.maxConns)
	}
	// The client's sessions (fetch, completer) carry its id; the agent's
	// own (control, maintenance) the plain name.
	if !b.apps["tributary-agent:mode-poll"] || !b.apps["tributary-agent"] || len(b.apps) != 2 {
		t.Errorf("application names seen %v, want tributary-agent and tributary-agent:mode-poll", b.apps)
	}
	var max time.Duration
	for _, l := range lats {
		if l > max {
			max = l
		}
		if l < 0 || l > 1300*time.Millisecond {
			t.Errorf("poll mode: job started %s after its insert, want within the 1 s poll interval (+10%% jitter)", l)
		}
	}
	if max < 50*time.Millisecond {
		t.Errorf("poll mode: every job started within 50 ms of its insert (%v): looks notification-driven", lats)
	}

	// Control: the same observation finds a notify-mode agent's LISTEN.
	b, lines, lats = run("notify")
	t.Logf("notify mode: %d agent backends, latencies %v", len(b.pids), lats)
	if l := grepLines(lines, "LISTEN"); len(l) == 0 {
		t.Errorf("control failed: no LISTEN from the notify-mode agent in the statement log")
	}
	if len(b.listenSeen) == 0 {
		t.Errorf("control failed: pg_stat_activity never showed the notify-mode agent's LISTEN")
	}
}

// pauseQueue sets river_queue.paused_at like Client.QueuePause and, when
// notify is set, sends River's river_control notification in the same
// transaction (queue may be "*").
func pauseQueue(t *testing.T, c *pgx.Conn, queue string, pause, notify bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	set, action := "NULL", "resume"
	if pause {
		set, action = "coalesce(paused_at, now())", "pause"
	}
	if _, err := tx.Exec(ctx, `UPDATE river_queue SET paused_at = `+set+`, updated_at = now()
		WHERE name = $1 OR $1 = '*'`, queue); err != nil {
		t.Fatalf("update river_queue: %v", err)
	}
	if notify {
		if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_control', $1)`,
			`{"action":"`+action+`","queue":"`+queue+`"}`); err != nil {
			t.Fatalf("notify: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAgentFetchPauseResume: a paused queue fetches nothing; resuming
// fetches again. Notify mode reacts to river_control notifications (also
// for queue "*"); poll mode to river_queue.paused_at, read every 2 s.
func TestAgentFetchPauseResume(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode   string
		queue  string // the queue named in the pause/resume
		notify bool
		react  time.Duration
	}{
		{"notify", "q", true, time.Second},
		{"notify", "*", true, time.Second},
		{"poll", "q", false, 3 * time.Second},
	} {
		tc := tc
		name := tc.mode + "/" + strings.ReplaceAll(tc.queue, "*", "all")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dbURL := harness.NewRiverDB(t)
			conn := harness.Connect(t, dbURL)
			a := startAgent(t, dbURL, "", "--queue", "q:5", "--mode", tc.mode, "--poll-interval", "200ms", "--log-level", "debug")
			a.waitReady(t, "q", tc.mode == "notify")

			mark := len(a.StderrLines())
			t0 := time.Now()
			pauseQueue(t, conn, tc.queue, true, tc.notify)
			harness.WaitForStderrLineAfter(t, a.Proc, mark, "queue q paused", tc.react)
			t.Logf("paused after %s", time.Since(t0))
			// A fetch already in flight when the pause arrived still
			// completes (as in River); let it land before inserting.
			time.Sleep(300 * time.Millisecond)

			var ids []int64
			for i := 0; i < 3; i++ {
				ids = append(ids, harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.noop", Queue: "q"})[0])
			}
			time.Sleep(1500 * time.Millisecond) // several poll intervals
			for _, id := range ids {
				if j := harness.GetJob(t, conn, id); j.State != "available" || j.Attempt != 0 || j.AttemptedAt != nil {
					t.Errorf("job %d of a paused queue was touched: %s", id, j)
				}
			}

			t0 = time.Now()
			pauseQueue(t, conn, tc.queue, false, tc.notify)
			for _, id := range ids {
				j := harness.WaitState(t, conn, id, "completed", tc.react+time.Second)
				if j.Attempt != 1 {
					t.Errorf("job %d after resume: %s", id, j)
				}
			}
			t.Logf("resumed and worked after %s", time.Since(t0))
			harness.WaitForStderrLineAfter(t, a.Proc, mark, "queue q resumed", time.Second)
			a.stop(t, 20*time.Second)

			// River's queue_paused and queue_resumed events, in order.
			var qev []string
			for _, e := range a.events(t) {
				if strings.HasPrefix(e.Event, "queue_") {
					if e.Queue != "q" || e.ClientID == "" || e.At == nil {
						t.Errorf("incomplete queue event: %+v", e)
					}
					qev = append(qev, e.Event)
				}
			}
			if strings.Join(qev, ",") != "queue_paused,queue_resumed" {
				t.Errorf("queue events = %v, want [queue_paused queue_resumed]", qev)
			}
		})
	}
}

// Command pickupbench measures pickup latency: the time from an insert's
// COMMIT to the moment a worker claimed the job, at a fixed insert rate.
//
//	pickupbench --database-url URL --rate 1000 --duration 15s
//	            [--conns N] [--notify every|river|none] [--queue default]
//	            [--kind tributary.noop] [--wait 30s] [--label TEXT] [--json]
//	            [--snap-cmd CMD]
//
// Insertion (open loop, paced): job i is due at start + i/rate; --conns
// connections take due jobs in order and each inserts one job per
// transaction the way a River inserter does: BEGIN; INSERT INTO river_job
// (args, created_at, kind, max_attempts, metadata, priority, queue,
// scheduled_at, state, tags) with created_at = scheduled_at = the
// inserter's clock (River's driver does the same); then, in the same
// transaction, SELECT pg_notify('<schema>.river_insert', '{"queue": "<q>"}');
// COMMIT. --notify every sends that notification in every transaction (a raw
// SQL inserter; the default), river applies River's per-client limiter
// (at most one notification per queue per 100 ms, --notify-limit), none sends
// none. The wall clock is read right after COMMIT returns: that is the
// "commit" time of the job. The run is bounded by --duration (wall clock:
// inserting stops then even if the pacer fell behind) and by --count
// (default rate × duration); the achieved rate is printed. A pacer that
// falls behind sends the late jobs at once (open loop); latency is still
// measured from each job's own commit. --snap-cmd runs a shell command
// after the measurement while the inserter's connections are still open
// (the benchmark takes its CPU snapshot there, so the inserter's backends
// are alive to be named).
//
// Pickup: once the inserts are done it waits (at most --wait) until every
// inserted job has attempted_at set, then reads attempted_at for those ids.
// attempted_at is written by River's fetch statement (and Tributary's) as the
// database's now() at the start of the fetch statement that claimed the
// job. latency = attempted_at − commit time. Both are the same machine's
// wall clock (CLOCK_REALTIME): Postgres now() and Go time.Now().
// Latencies can be slightly negative: the claiming fetch can start between
// the server's commit and the inserter reading COMMIT's reply.
//
// With track_commit_timestamp = on in the server, each insert's transaction
// id is recorded too and a second set of figures ("srv_*") uses the server's
// commit timestamp (pg_xact_commit_timestamp) instead of the inserter's
// clock: database clock only.
//
// Output: one human-readable line, and with --json one JSON line with the
// percentiles (p50, p90, p95, p99, p99.9, max, mean) in milliseconds.
// Exit status: 0 ok, 1 runtime error (or jobs not picked up within --wait),
// 2 usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

type options struct {
	url         string
	schema      string
	rate        float64
	duration    time.Duration
	count       int
	conns       int
	notify      string
	notifyLimit time.Duration
	queue       string
	kind        string
	args        string
	wait        time.Duration
	label       string
	jsonOut     bool
	snapCmd     string
}

type sample struct {
	id       int64
	commitNS int64
	xid      string // inserting transaction (with track_commit_timestamp)
}

type result struct {
	Label         string  `json:"label,omitempty"`
	TargetRate    float64 `json:"target_rate"`
	AchievedRate  float64 `json:"achieved_rate"`
	Jobs          int     `json:"jobs"`
	Conns         int     `json:"conns"`
	Notify        string  `json:"notify"`
	Notifications int64   `json:"notifications"`
	InsertSeconds float64 `json:"insert_s"`
	MaxBehindMS   float64 `json:"max_behind_ms"`
	MaxBehindAtS  float64 `json:"max_behind_at_s"`
	P50           float64 `json:"p50_ms"`
	P90           float64 `json:"p90_ms"`
	P95           float64 `json:"p95_ms"`
	P99           float64 `json:"p99_ms"`
	P999          float64 `json:"p999_ms"`
	Max           float64 `json:"max_ms"`
	Min           float64 `json:"min_ms"`
	Mean          float64 `json:"mean_ms"`
	InsertP50     float64 `json:"insert_tx_p50_ms"`
	InsertP99     float64 `json:"insert_tx_p99_ms"`
	NotPickedUp   int     `json:"not_picked_up"`
	// From the server's commit timestamp (track_commit_timestamp), DB clock.
	SrvN           int     `json:"srv_n,omitempty"`
	SrvP50         float64 `json:"srv_p50_ms,omitempty"`
	SrvP95         float64 `json:"srv_p95_ms,omitempty"`
	SrvP99         float64 `json:"srv_p99_ms,omitempty"`
	SrvMax         float64 `json:"srv_max_ms,omitempty"`
	SrvMin         float64 `json:"srv_min_ms,omitempty"`
	SrvMean        float64 `json:"srv_mean_ms,omitempty"`
	FirstAttempted string  `json:"first_attempted_at,omitempty"`
}

func main() {
	os.Exit(run())
}

func run() int {
	o := &options{}
	fs := flag.NewFlagSet("pickupbench", flag.ContinueOnError)
	fs.StringVar(&o.url, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	fs.StringVar(&o.schema, "schema", "", "schema of River's tables (default: current_schema())")
	fs.Float64Var(&o.rate, "rate", 1000, "inserts (jobs) per second")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "insert phase length")
	fs.IntVar(&o.count, "count", 0, "at most this many jobs (default rate × duration)")
	fs.IntVar(&o.conns, "conns", 0, "inserter connections (default: 1 per 250 jobs/s, at least 2)")
	fs.StringVar(&o.notify, "notify", "every", "river_insert notification: every (each tx), river (River's 100 ms limiter), none")
	fs.DurationVar(&o.notifyLimit, "notify-limit", 100*time.Millisecond, "limiter interval for --notify river (River: the inserting client's FetchCooldown)")
	fs.StringVar(&o.queue, "queue", "default", "queue")
	fs.StringVar(&o.kind, "kind", "tributary.noop", "job kind")
	fs.StringVar(&o.args, "args", "{}", "job args (JSON)")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "wait at most this long after the last insert for every job to be picked up")
	fs.StringVar(&o.label, "label", "", "label echoed in the output")
	fs.BoolVar(&o.jsonOut, "json", false, "also print one JSON line")
	fs.StringVar(&o.snapCmd, "snap-cmd", "", "shell command run after the measurement, while the inserter's connections are still open (e.g. a CPU snapshot)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.url == "" || o.rate <= 0 || o.duration <= 0 || o.wait <= 0 ||
		(o.notify != "every" && o.notify != "river" && o.notify != "none") {
		fmt.Fprintln(os.Stderr, "pickupbench: need --database-url, --rate > 0, --duration > 0, --notify every|river|none")
		return 2
	}
	if o.count <= 0 {
		o.count = int(o.rate * o.duration.Seconds())
	}
	if o.conns <= 0 {
		o.conns = int(math.Ceil(o.rate / 250))
		if o.conns < 2 {
			o.conns = 2
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, o.duration+o.wait+2*time.Minute)
	defer cancelT()

	cfg, err := pgxpool.ParseConfig(o.url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
		return 2
	}
	cfg.MaxConns = int32(o.conns + 1)
	cfg.MinConns = int32(o.conns + 1)
	cfg.ConnConfig.RuntimeParams["application_name"] = "pickupbench"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
		return 1
	}
	defer pool.Close()

	table := "river_job"
	if o.schema != "" {
		table = pgx.Identifier{o.schema, "river_job"}.Sanitize()
	}
	var topic string
	if o.schema != "" {
		topic = o.schema + ".river_insert"
	} else if err := pool.QueryRow(ctx, "SELECT current_schema() || '.river_insert'").Scan(&topic); err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
		return 1
	}
	payload := fmt.Sprintf(`{"queue": %q}`, o.queue)
	insertSQL := "INSERT INTO " + table + ` (args, created_at, kind, max_attempts, metadata,
		priority, queue, scheduled_at, state, tags)
		VALUES ($1::jsonb, $2, $3, 25, '{}', 1, $4, $2, 'available', '{}')
		RETURNING id, CASE WHEN $5::bool THEN pg_current_xact_id()::text ELSE '' END`

	// With track_commit_timestamp on, the server's commit time of each
	// insert is known too (pg_xact_commit_timestamp): a second latency
	// figure on the database clock only, free of the inserter's reply delay.
	var trackCommitTS string
	if err := pool.QueryRow(ctx, "SHOW track_commit_timestamp").Scan(&trackCommitTS); err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
		return 1
	}
	withXID := trackCommitTS == "on"

	// Warm every connection (prepared statements, catalog caches) so the
	// first jobs do not pay for it.
	{
		var wg sync.WaitGroup
		for i := 0; i < o.conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := pool.Acquire(ctx)
				if err != nil {
					return
				}
				defer c.Release()
				_, _ = c.Exec(ctx, "SELECT 1 FROM "+table+" WHERE false")
			}()
		}
		wg.Wait()
	}

	var lastNotify atomic.Int64
	var notifications atomic.Int64
	shouldNotify := func(now time.Time) bool {
		switch o.notify {
		case "every":
			return true
		case "none":
			return false
		}
		for {
			last := lastNotify.Load()
			if last != 0 && now.UnixNano()-last <= o.notifyLimit.Nanoseconds() {
				return false
			}
			if lastNotify.CompareAndSwap(last, now.UnixNano()) {
				return true
			}
		}
	}

	samples := make([]sample, o.count)
	txDur := make([]float64, o.count)
	var next atomic.Int64 // next job index to insert
	var maxBehind, maxBehindAt atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	deadline := start.Add(o.duration)
	interval := float64(time.Second) / o.rate
	errCh := make(chan error, o.conns)
	var wg sync.WaitGroup
	for w := 0; w < o.conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pool.Acquire(ctx)
			if err != nil {
				errCh <- err
				return
			}
			defer conn.Release()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.count) {
					return
				}
				due := start.Add(time.Duration(float64(i) * interval))
				if due.After(deadline) || time.Now().After(deadline) {
					next.Store(int64(o.count))
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				} else if -d.Nanoseconds() > maxBehind.Load() {
					maxBehind.Store(-d.Nanoseconds())
					maxBehindAt.Store(time.Since(start).Nanoseconds())
				}
				t0 := time.Now()
				tx, err := conn.Begin(ctx)
				if err != nil {
					errCh <- err
					return
				}
				now := time.Now().UTC()
				var id int64
				var xid string
				if err := tx.QueryRow(ctx, insertSQL, o.args, now, o.kind, o.queue, withXID).Scan(&id, &xid); err != nil {
					_ = tx.Rollback(ctx)
					errCh <- err
					return
				}
				if shouldNotify(now) {
					if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", topic, payload); err != nil {
						_ = tx.Rollback(ctx)
						errCh <- err
						return
					}
					notifications.Add(1)
				}
				if err := tx.Commit(ctx); err != nil {
					errCh <- err
					return
				}
				t1 := time.Now()
				samples[i] = sample{id: id, commitNS: t1.UnixNano(), xid: xid}
				txDur[i] = float64(t1.Sub(t0)) / 1e6
			}
		}()
	}
	wg.Wait()
	insertEnd := time.Now()
	close(errCh)
	if err := <-errCh; err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: insert: %v\n", err)
		return 1
	}
	n := 0
	for i, s := range samples {
		if s.id != 0 {
			samples[n] = s
			txDur[n] = txDur[i]
			n++
		}
	}
	samples = samples[:n]
	if n == 0 {
		fmt.Fprintln(os.Stderr, "pickupbench: nothing inserted")
		return 1
	}
	ids := make([]int64, n)
	for i, s := range samples {
		ids[i] = s.id
	}

	// Wait for every job to be claimed.
	waitEnd := time.Now().Add(o.wait)
	var pending int
	for {
		err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id = ANY($1) AND attempted_at IS NULL", ids).Scan(&pending)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
			return 1
		}
		if pending == 0 || time.Now().After(waitEnd) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	attempted := map[int64]time.Time{}
	committed := map[int64]time.Time{}
	xids := make([]string, n)
	for i, s := range samples {
		xids[i] = s.xid
	}
	rows, err := pool.Query(ctx, `SELECT j.id, j.attempted_at,
		CASE WHEN x.xid <> '' THEN pg_xact_commit_timestamp(x.xid::xid) END
		FROM unnest($1::bigint[], $2::text[]) AS x(id, xid)
		JOIN `+table+` AS j ON j.id = x.id WHERE j.attempted_at IS NOT NULL`, ids, xids)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
		return 1
	}
	for rows.Next() {
		var id int64
		var at time.Time
		var ct *time.Time
		if err := rows.Scan(&id, &at, &ct); err != nil {
			fmt.Fprintf(os.Stderr, "pickupbench: %v\n", err)
			return 1
		}
		attempted[id] = at
		if ct != nil {
			committed[id] = *ct
		}
	}
	rows.Close()
	if rows.Err() != nil {
		fmt.Fprintf(os.Stderr, "pickupbench: %v\n", rows.Err())
		return 1
	}
	lat := make([]float64, 0, n)
	var srvLat []float64
	var first time.Time
	for _, s := range samples {
		at, ok := attempted[s.id]
		if !ok {
			continue
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
		lat = append(lat, float64(at.UnixNano()-s.commitNS)/1e6)
		if ct, ok := committed[s.id]; ok {
			srvLat = append(srvLat, float64(at.Sub(ct))/1e6)
		}
	}
	sort.Float64s(srvLat)
	if o.snapCmd != "" {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", o.snapCmd)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "pickupbench: --snap-cmd: %v\n", err)
		}
	}
	sort.Float64s(lat)
	tx := append([]float64(nil), txDur[:n]...)
	sort.Float64s(tx)
	insertSecs := insertEnd.Sub(start).Seconds()
	r := result{
		Label: o.label, TargetRate: o.rate, Jobs: n, Conns: o.conns, Notify: o.notify,
		Notifications: notifications.Load(), InsertSeconds: insertSecs,
		AchievedRate: float64(n) / insertSecs, MaxBehindMS: float64(maxBehind.Load()) / 1e6,
		MaxBehindAtS: float64(maxBehindAt.Load()) / 1e9,
		InsertP50:    pct(tx, 50), InsertP99: pct(tx, 99), NotPickedUp: n - len(lat),
	}
	if len(lat) > 0 {
		var sum float64
		for _, v := range lat {
			sum += v
		}
		r.P50, r.P90, r.P95, r.P99, r.P999 = pct(lat, 50), pct(lat, 90), pct(lat, 95), pct(lat, 99), pct(lat, 99.9)
		r.Min, r.Max, r.Mean = lat[0], lat[len(lat)-1], sum/float64(len(lat))
		r.FirstAttempted = first.UTC().Format(time.RFC3339Nano)
	}
	if len(srvLat) > 0 {
		var sum float64
		for _, v := range srvLat {
			sum += v
		}
		r.SrvN = len(srvLat)
		r.SrvP50, r.SrvP95, r.SrvP99 = pct(srvLat, 50), pct(srvLat, 95), pct(srvLat, 99)
		r.SrvMin, r.SrvMax, r.SrvMean = srvLat[0], srvLat[len(srvLat)-1], sum/float64(len(srvLat))
	}
	fmt.Printf("pickupbench %s: %d jobs at %.0f/s (target %.0f/s, %d conns, notify %s, %d notifications), pickup ms: p50 %.2f p95 %.2f p99 %.2f max %.2f (mean %.2f, min %.2f), not picked up %d\n",
		o.label, n, r.AchievedRate, o.rate, o.conns, o.notify, r.Notifications, r.P50, r.P95, r.P99, r.Max, r.Mean, r.Min, r.NotPickedUp)
	if r.SrvN > 0 {
		fmt.Printf("pickupbench %s: from the server's commit timestamp: p50 %.2f p95 %.2f p99 %.2f max %.2f (mean %.2f, min %.2f)\n",
			o.label, r.SrvP50, r.SrvP95, r.SrvP99, r.SrvMax, r.SrvMean, r.SrvMin)
	}
	if o.jsonOut {
		j, _ := json.Marshal(r)
		fmt.Println(string(j))
	}
	if r.NotPickedUp > 0 {
		fmt.Fprintf(os.Stderr, "pickupbench: %d jobs not picked up within %s\n", r.NotPickedUp, o.wait)
		return 1
	}
	return 0
}

// pct is the nearest-rank percentile of sorted v.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(v)))) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(v) {
		k = len(v) - 1
	}
	return v[k]
}

// Command eventlag measures how long a finished job takes to become visible
// in the coordinator (bench/coordinator.sh, "lag"). Two sub-commands:
//
//	eventlag read [--idle 5s] [--max-wait 10m] [--expect N] [--label L]
//	              [--raw FILE] [--json]
//	    Reads the NDJSON of `tributary events` on stdin. Each line is stamped
//	    with the wall clock (Go time.Now(), CLOCK_REALTIME) of the read(2)
//	    that delivered its last byte — i.e. when it arrived, not when it was
//	    parsed — and for every job_completed, job_failed, job_cancelled,
//	    job_snoozed or job_discarded line with a finalized_at it computes
//	    lag = arrival − finalized_at, and splits it at the event's "at" (when
//	    the agent published the event, after the write-back committed):
//	    writeback = at − finalized_at, forward = arrival − at. finalized_at
//	    and at are the agent's estimate of the database clock (its local
//	    clock plus a measured offset; on one machine the same clock as ours).
//	    Lines {"missed": N, ...} (the reader fell behind the coordinator's
//	    ring) are counted and reported. It stops at EOF, after --expect
//	    events, when no line came for --idle after the first one, or at
//	    --max-wait. --raw writes one line per event: arrival_ns, lag_ms,
//	    writeback_ms, forward_ms, node, job_id.
//	    Prints one human-readable line and, with --json, one JSON line with
//	    the percentiles (nearest rank) in milliseconds.
//
//	eventlag insert --database-url URL --rate 5000 --duration 20s
//	                [--tick 10ms] [--conns 2] [--queue default]
//	                [--kind tributary.noop] [--json]
//	    A paced open-loop inserter: every --tick it inserts rate × tick jobs
//	    (tick i is due at start + i × tick) in one transaction with one
//	    river_insert notification, the way River's InsertMany does; --conns
//	    connections take due ticks in order, so one slow commit does not stall
//	    the pace. created_at = scheduled_at = the database's now(). Stops
//	    inserting at the end of --duration even if the pacer fell behind, and
//	    prints the jobs inserted, the achieved rate and how far the pacer
//	    fell behind at worst. (pickupbench inserts one job per transaction,
//	    which this 2-vCPU machine cannot do 5,000 times a second beside the
//	    agents; a batch per tick can.)
//
// Both print their own CPU seconds too (cpu_s), so that the benchmark can
// tell what the rest of the machine used meanwhile.
//
// Exit status: 0 ok, 1 runtime failure (read: no event measured), 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: eventlag read|insert [options] (see the source's comment)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "read":
		os.Exit(runRead(os.Args[2:]))
	case "insert":
		os.Exit(runInsert(os.Args[2:]))
	}
	fmt.Fprintf(os.Stderr, "eventlag: unknown sub-command %q (read, insert)\n", os.Args[1])
	os.Exit(2)
}

// ---------------------------------------------------------------- read

type event struct {
	Event       string  `json:"event"`
	Node        string  `json:"node"`
	JobID       int64   `json:"job_id"`
	FinalizedAt *string `json:"finalized_at"`
	At          *string `json:"at"`
	Missed      *int64  `json:"missed"`
}

type readResult struct {
	Label        string  `json:"label,omitempty"`
	Events       int     `json:"events"`
	Missed       int64   `json:"missed"`
	Unparsed     int     `json:"unparsed"`
	SpanS        float64 `json:"span_s"`
	RatePerS     float64 `json:"rate_per_s"`
	P50          float64 `json:"p50_ms"`
	P90          float64 `json:"p90_ms"`
	P99          float64 `json:"p99_ms"`
	P999         float64 `json:"p999_ms"`
	Max          float64 `json:"max_ms"`
	Min          float64 `json:"min_ms"`
	Mean         float64 `json:"mean_ms"`
	WritebackP50 float64 `json:"writeback_p50_ms"`
	WritebackP99 float64 `json:"writeback_p99_ms"`
	ForwardP50   float64 `json:"forward_p50_ms"`
	ForwardP99   float64 `json:"forward_p99_ms"`
	ForwardMax   float64 `json:"forward_max_ms"`
	WorstSecond  string  `json:"worst_second,omitempty"`
	CPUS         float64 `json:"cpu_s"` // this reader's own CPU time
}

// selfCPU: user + system CPU seconds of this process so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// pct: nearest rank of sorted v (p in 0..100).
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	r := int(math.Ceil(p / 100 * float64(len(v))))
	if r < 1 {
		r = 1
	}
	return v[r-1]
}

func finalEvent(k string) bool {
	switch k {
	case "job_completed", "job_failed", "job_cancelled", "job_snoozed", "job_discarded":
		return true
	}
	return false
}

// lineReader splits stdin into lines, each stamped with the time of the
// read(2) that delivered its last byte.
type lineReader struct {
	r    io.Reader
	buf  []byte
	pend []byte // bytes of an unfinished line
}

type stamped struct {
	line []byte
	at   time.Time
}

func (lr *lineReader) run(out chan<- stamped, errc chan<- error) {
	for {
		n, err := lr.r.Read(lr.buf)
		t := time.Now()
		if n > 0 {
			chunk := lr.buf[:n]
			for {
				i := indexByte(chunk, '\n')
				if i < 0 {
					lr.pend = append(lr.pend, chunk...)
					break
				}
				line := append(append([]byte(nil), lr.pend...), chunk[:i]...)
				lr.pend = lr.pend[:0]
				out <- stamped{line: line, at: t}
				chunk = chunk[i+1:]
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				errc <- err
			}
			close(out)
			return
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func runRead(args []string) int {
	fs := flag.NewFlagSet("eventlag read", flag.ContinueOnError)
	idle := fs.Duration("idle", 5*time.Second, "stop when no line came for this long (after the first)")
	maxWait := fs.Duration("max-wait", 10*time.Minute, "stop after this long in any case")
	expect := fs.Int("expect", 0, "stop after this many job events (0: no limit)")
	label := fs.String("label", "", "label echoed in the output")
	rawPath := fs.String("raw", "", "write one line per event here")
	jsonOut := fs.Bool("json", false, "also print one JSON line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *idle <= 0 || *maxWait <= 0 || *expect < 0 {
		fmt.Fprintln(os.Stderr, "eventlag read: --idle and --max-wait must be > 0, --expect >= 0")
		return 2
	}
	var raw *os.File
	if *rawPath != "" {
		f, err := os.Create(*rawPath)
		if err != nil {
			fmt.Fprintf(os.Stderr, "eventlag read: %v\n", err)
			return 1
		}
		defer f.Close()
		raw = f
	}
	lines := make(chan stamped, 1<<16)
	errc := make(chan error, 1)
	lr := &lineReader{r: os.Stdin, buf: make([]byte, 1<<20)}
	go lr.run(lines, errc)

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	deadline := time.After(*maxWait)
	var lag, wb, fwd []float64
	var res readResult
	var first, last time.Time
	perSec := map[int64]float64{} // arrival second -> worst lag
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	started := false
loop:
	for {
		select {
		case s, ok := <-lines:
			if !ok {
				break loop
			}
			if !started {
				started = true
			}
			timer.Reset(*idle)
			var ev event
			if err := json.Unmarshal(s.line, &ev); err != nil {
				res.Unparsed++
				continue
			}
			if ev.Missed != nil {
				res.Missed += *ev.Missed
				continue
			}
			if !finalEvent(ev.Event) || ev.FinalizedAt == nil {
				continue
			}
			fin, err := time.Parse(time.RFC3339Nano, *ev.FinalizedAt)
			if err != nil {
				res.Unparsed++
				continue
			}
			l := float64(s.at.Sub(fin)) / 1e6
			lag = append(lag, l)
			w, f := math.NaN(), math.NaN()
			if ev.At != nil {
				if at, err := time.Parse(time.RFC3339Nano, *ev.At); err == nil {
					w = float64(at.Sub(fin)) / 1e6
					f = float64(s.at.Sub(at)) / 1e6
					wb = append(wb, w)
					fwd = append(fwd, f)
				}
			}
			if first.IsZero() {
				first = s.at
			}
			last = s.at
			sec := s.at.Unix()
			if l > perSec[sec] {
				perSec[sec] = l
			}
			if raw != nil {
				fmt.Fprintf(raw, "%d\t%.3f\t%.3f\t%.3f\t%s\t%d\n", s.at.UnixNano(), l, w, f, ev.Node, ev.JobID)
			}
			if *expect > 0 && len(lag) >= *expect {
				break loop
			}
		case <-timer.C:
			if started {
				break loop
			}
		case err := <-errc:
			fmt.Fprintf(os.Stderr, "eventlag read: %v\n", err)
			return 1
		case <-deadline:
			fmt.Fprintln(os.Stderr, "eventlag read: --max-wait reached")
			break loop
		case <-sigc:
			break loop
		}
	}
	res.Label = *label
	res.Events = len(lag)
	res.CPUS = selfCPU()
	if res.Events == 0 {
		fmt.Fprintln(os.Stderr, "eventlag read: no job event with finalized_at read")
		return 1
	}
	var sum float64
	for _, v := range lag {
		sum += v
	}
	res.Mean = sum / float64(len(lag))
	sort.Float64s(lag)
	sort.Float64s(wb)
	sort.Float64s(fwd)
	res.SpanS = last.Sub(first).Seconds()
	if res.SpanS > 0 {
		res.RatePerS = float64(res.Events) / res.SpanS
	}
	res.P50, res.P90, res.P99, res.P999 = pct(lag, 50), pct(lag, 90), pct(lag, 99), pct(lag, 99.9)
	res.Min, res.Max = lag[0], lag[len(lag)-1]
	if len(wb) > 0 {
		res.WritebackP50, res.WritebackP99 = pct(wb, 50), pct(wb, 99)
		res.ForwardP50, res.ForwardP99, res.ForwardMax = pct(fwd, 50), pct(fwd, 99), fwd[len(fwd)-1]
	}
	var worstSec int64
	for s, v := range perSec {
		if worstSec == 0 || v > perSec[worstSec] {
			worstSec = s
		}
	}
	if worstSec != 0 {
		res.WorstSecond = fmt.Sprintf("%ds after the first event (max %.1f ms)", worstSec-first.Unix(), perSec[worstSec])
	}
	fmt.Fprintf(os.Stderr, "eventlag: %d events over %.1f s (%.0f/s), missed %d: lag p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f ms (write-back p50 %.1f p99 %.1f; forward+coordinator+CLI p50 %.1f p99 %.1f max %.1f)\n",
		res.Events, res.SpanS, res.RatePerS, res.Missed, res.P50, res.P90, res.P99, res.P999, res.Max,
		res.WritebackP50, res.WritebackP99, res.ForwardP50, res.ForwardP99, res.ForwardMax)
	if *jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
	return 0
}

// -------------------------------------------------------------- insert

type insertResult struct {
	Jobs         int64   `json:"jobs"`
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	InsertS      float64 `json:"insert_s"`
	Ticks        int64   `json:"ticks"`
	PerTick      int     `json:"per_tick"`
	MaxBehindMS  float64 `json:"max_behind_ms"`
	TxP50MS      float64 `json:"tx_p50_ms"`
	TxP99MS      float64 `json:"tx_p99_ms"`
	CPUS         float64 `json:"cpu_s"` // this inserter's own CPU time
}

func runInsert(args []string) int {
	fs := flag.NewFlagSet("eventlag insert", flag.ContinueOnError)
	url := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL")
	rate := fs.Float64("rate", 5000, "jobs per second")
	dur := fs.Duration("duration", 20*time.Second, "insert phase length")
	tick := fs.Duration("tick", 10*time.Millisecond, "one transaction per tick")
	conns := fs.Int("conns", 2, "inserter connections")
	queue := fs.String("queue", "default", "queue")
	kind := fs.String("kind", "tributary.noop", "job kind")
	jsonOut := fs.Bool("json", false, "also print one JSON line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	perTick := int(math.Round(*rate * tick.Seconds()))
	if *url == "" || *rate <= 0 || *dur <= 0 || *tick <= 0 || *conns < 1 || perTick < 1 {
		fmt.Fprintln(os.Stderr, "eventlag insert: need --database-url, --rate > 0, --duration > 0, --tick > 0 with rate × tick >= 1, --conns >= 1")
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *dur+time.Minute)
	defer cancelT()
	cfg, err := pgxpool.ParseConfig(*url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "eventlag insert: %v\n", err)
		return 2
	}
	cfg.MaxConns, cfg.MinConns = int32(*conns), int32(*conns)
	cfg.ConnConfig.RuntimeParams["application_name"] = "eventlag-insert"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "eventlag insert: %v\n", err)
		return 1
	}
	defer pool.Close()
	var topic string
	if err := pool.QueryRow(ctx, "SELECT current_schema() || '.river_insert'").Scan(&topic); err != nil {
		fmt.Fprintf(os.Stderr, "eventlag insert: %v\n", err)
		return 1
	}
	payload := fmt.Sprintf(`{"queue": %q}`, *queue)
	const insertSQL = `INSERT INTO river_job (args, created_at, kind, max_attempts, metadata,
		priority, queue, scheduled_at, state, tags)
		SELECT '{}'::jsonb, now(), $1, 25, '{}', 1, $2, now(), 'available', '{}'
		FROM generate_series(1, $3::int)`

	nticks := int64(dur.Seconds() / tick.Seconds())
	var next, jobs atomic.Int64
	var behindMax atomic.Int64
	txDur := make([]float64, nticks)
	start := time.Now().Add(50 * time.Millisecond)
	deadline := start.Add(*dur)
	errc := make(chan error, *conns)
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pool.Acquire(ctx)
			if err != nil {
				errc <- err
				return
			}
			defer c.Release()
			for {
				i := next.Add(1) - 1
				if i >= nticks {
					return
				}
				due := start.Add(time.Duration(i) * *tick)
				if time.Now().After(deadline) {
					next.Store(nticks)
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				} else if -d.Nanoseconds() > behindMax.Load() {
					behindMax.Store(-d.Nanoseconds())
				}
				t0 := time.Now()
				tx, err := c.Begin(ctx)
				if err != nil {
					errc <- err
					return
				}
				if _, err := tx.Exec(ctx, insertSQL, *kind, *queue, perTick); err != nil {
					_ = tx.Rollback(ctx)
					errc <- err
					return
				}
				if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", topic, payload); err != nil {
					_ = tx.Rollback(ctx)
					errc <- err
					return
				}
				if err := tx.Commit(ctx); err != nil {
					errc <- err
					return
				}
				txDur[i] = float64(time.Since(t0)) / 1e6
				jobs.Add(int64(perTick))
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	close(errc)
	if err := <-errc; err != nil {
		fmt.Fprintf(os.Stderr, "eventlag insert: %v\n", err)
		return 1
	}
	var tx []float64
	for _, v := range txDur {
		if v > 0 {
			tx = append(tx, v)
		}
	}
	sort.Float64s(tx)
	r := insertResult{
		Jobs: jobs.Load(), TargetRate: *rate, InsertS: end.Sub(start).Seconds(),
		Ticks: int64(len(tx)), PerTick: perTick,
		MaxBehindMS: float64(behindMax.Load()) / 1e6,
		TxP50MS:     pct(tx, 50), TxP99MS: pct(tx, 99),
	}
	r.AchievedRate = float64(r.Jobs) / r.InsertS
	r.CPUS = selfCPU()
	fmt.Fprintf(os.Stderr, "eventlag insert: %d jobs in %.1f s = %.0f jobs/s (target %.0f; %d per %v transaction; tx p50 %.1f p99 %.1f ms; pacer at worst %.1f ms behind)\n",
		r.Jobs, r.InsertS, r.AchievedRate, *rate, perTick, *tick, r.TxP50MS, r.TxP99MS, r.MaxBehindMS)
	if *jsonOut {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	return 0
}

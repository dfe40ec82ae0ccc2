// Command riverbench re-creates the burn-down mode of River's CLI benchmark,
// `river bench --num-total-jobs N` (cmd/river/riverbench/river_bench.go in
// repository riverqueue/river), with River v0.51.2's own client. The CLI is a
// separate Go module (github.com/riverqueue/river/cmd/river) that our module
// proxy does not serve, so its behaviour is reproduced here from the facts
// (docs in /work/notes/river-facts.md §11):
//
//   - Reset (--truncate; river bench always does it): TRUNCATE TABLE river_job,
//     river_leader, river_queue, river_notification (the main line's tables at
//     the latest migration) and VACUUM FULL river_job.
//   - Jobs: kind "benchmark" (river bench's BenchmarkArgs.Kind()), args
//     {"num":k} with k = 1..N, queue "default"; inserted before the client
//     starts with Client.InsertMany (multi-row INSERT ... RETURNING, not COPY)
//     in batches of 5,000, each batch its own transaction with River's
//     river_insert notification.
//   - Client: one ordinary river.Client (LISTEN, leader election and
//     maintenance on) with FetchCooldown 2 ms, FetchPollInterval 20 ms, queue
//     "default" with MaxWorkers 2,000 (--max-workers), a single no-op worker.
//   - Counting: Client.SubscribeConfig{ChanSize: 75,000, Kinds:
//     job_cancelled, job_completed, job_failed}; every event counts as one job
//     worked and sets lastJobWorkedAt. start = time.Now() right after Start.
//     Every 2 s it prints "bench: jobs worked [ … ], inserted [ … ], job/sec
//     [ … ] [<period>]" and stops at the first tick with no outstanding job.
//     Final line: "bench: total jobs worked [ … ], total jobs inserted [ … ],
//     overall job/sec [ … ], running <dur>" with job/sec = worked /
//     (lastJobWorkedAt − start). Then Client.Stop.
//   - Like river bench, a goroutine counts available jobs once a second
//     (logged at info level; shown with --verbose).
//   - Pool: application_name, statement_timeout 10 s and
//     idle_in_transaction_session_timeout 11 s unless set in the URL, as the
//     CLI does.
//
// Differences, all additive: insert errors are fatal (river bench only logs
// them); the insert phase prints its own line (prefixed "riverbench:"); River
// silently drops subscription events when the buffer is full, so the number of
// drops is counted (from River's warning) and, when events stop arriving
// before all N are seen, the remaining count is taken from river_job instead
// (the result then says count_source "river_job"); --timeout bounds the run;
// --json prints one machine-readable line at the end.
//
// Exit status: 0 when all N jobs were worked, 1 on a runtime error or
// timeout, 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2

	benchKind       = "benchmark" // river bench's job kind
	insertBatchSize = 5_000       // river bench's insertBatchSize
	chanSizeDefault = 75_000      // river bench's minJobs, used as ChanSize
	iterationPeriod = 2 * time.Second
)

// BenchmarkArgs mirrors river bench's job args: {"num": k}.
type BenchmarkArgs struct {
	Num int `json:"num"`
}

func (BenchmarkArgs) Kind() string { return benchKind }

type benchmarkWorker struct {
	river.WorkerDefaults[BenchmarkArgs]
}

func (benchmarkWorker) Work(context.Context, *river.Job[BenchmarkArgs]) error { return nil }

type options struct {
	databaseURL  string
	schema       string
	numTotalJobs int
	maxWorkers   int
	skipInsert   bool
	insertOnly   bool
	truncate     bool
	jsonOut      bool
	chanSize     int
	timeout      time.Duration
	verbose      bool
}

func parseFlags(argv []string, stderr io.Writer) (*options, int) {
	fs := flag.NewFlagSet("riverbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: riverbench --database-url URL --num-total-jobs N [flags]

Re-creates "river bench --num-total-jobs N" (burn-down mode) with River's Go
client: inserts N no-op jobs of kind "benchmark" with InsertMany in batches
of 5,000, starts one client (FetchCooldown 2ms, FetchPollInterval 20ms,
queue default with --max-workers workers), counts finished jobs from a
subscription and prints river bench's progress and summary lines.
river bench always truncates River's tables first: pass --truncate to do so.
Exit status: 0 all jobs worked, 1 runtime error or timeout, 2 usage error.

flags:
`)
		fs.PrintDefaults()
	}
	o := &options{}
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	fs.StringVar(&o.schema, "schema", "", "schema holding River's tables (default: the connection's search_path)")
	fs.IntVar(&o.numTotalJobs, "num-total-jobs", 0, "number of jobs to insert and work (required)")
	fs.IntVar(&o.maxWorkers, "max-workers", 2000, "MaxWorkers of queue default (river bench: 2,000)")
	fs.BoolVar(&o.skipInsert, "skip-insert", false, "the N benchmark jobs are already inserted; only work them")
	fs.BoolVar(&o.insertOnly, "insert-only", false, "insert the jobs and exit without working them")
	fs.BoolVar(&o.truncate, "truncate", false, "truncate river_job, river_leader, river_queue, river_notification and VACUUM FULL river_job first (river bench always does)")
	fs.BoolVar(&o.jsonOut, "json", false, "print a final JSON line with the figures")
	fs.IntVar(&o.chanSize, "subscribe-chan-size", chanSizeDefault, "subscription buffer (river bench: 75,000)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up after this long (exit 1)")
	fs.BoolVar(&o.verbose, "verbose", false, "River's and the benchmark's info-level logs on stderr (default: warnings only, like the CLI)")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	usageErr := func(format string, a ...any) (*options, int) {
		fmt.Fprintf(stderr, "riverbench: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run riverbench -h for usage")
		return nil, exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case o.databaseURL == "":
		return usageErr("--database-url is required")
	case o.numTotalJobs < 1:
		return usageErr("--num-total-jobs N (N >= 1) is required")
	case o.maxWorkers < 1 || o.maxWorkers > 10_000:
		return usageErr("--max-workers must be 1..10000 (River's limit), got %d", o.maxWorkers)
	case o.skipInsert && o.insertOnly:
		return usageErr("--skip-insert and --insert-only exclude each other")
	case o.skipInsert && o.truncate:
		return usageErr("--truncate would delete the jobs --skip-insert expects")
	case o.chanSize < 1:
		return usageErr("--subscribe-chan-size must be at least 1")
	case o.timeout <= 0:
		return usageErr("--timeout must be positive")
	}
	return o, -1
}

// dropCounter wraps River's log handler to count "Subscription event
// dropped due to full buffer" warnings.
type dropCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h dropCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "Subscription event dropped") {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h dropCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dropCounter{Handler: h.Handler.WithAttrs(attrs), n: h.n}
}

func (h dropCounter) WithGroup(name string) slog.Handler {
	return dropCounter{Handler: h.Handler.WithGroup(name), n: h.n}
}

type result struct {
	TotalJobsWorked   int64   `json:"total_jobs_worked"`
	TotalJobsInserted int64   `json:"total_jobs_inserted"`
	JobsPerSec        float64 `json:"jobs_per_sec"`
	ElapsedSeconds    float64 `json:"elapsed_seconds"`
	Elapsed           string  `json:"elapsed"`
	InsertSeconds     float64 `json:"insert_seconds,omitempty"`
	InsertJobsPerSec  float64 `json:"insert_jobs_per_sec,omitempty"`
	NumTotalJobs      int     `json:"num_total_jobs"`
	MaxWorkers        int     `json:"max_workers"`
	Kind              string  `json:"kind"`
	CountSource       string  `json:"count_source"`
	DroppedEvents     int64   `json:"dropped_events"`
	Complete          bool    `json:"complete"`
	Error             string  `json:"error,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type bench struct {
	o       *options
	stdout  io.Writer
	stderr  io.Writer
	logger  *slog.Logger
	pool    *pgxpool.Pool
	table   func(name string) string
	dropped atomic.Int64
}

func run(argv []string, stdout, stderr io.Writer) int {
	o, code := parseFlags(argv, stderr)
	if code >= 0 {
		return code
	}
	b := &bench{o: o, stdout: stdout, stderr: stderr}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	b.logger = slog.New(dropCounter{Handler: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), n: &b.dropped})
	b.table = func(name string) string {
		if o.schema == "" {
			return name
		}
		return pgx.Identifier{o.schema, name}.Sanitize()
	}

	// ctx bounds everything (--timeout); a second SIGINT/SIGTERM cancels it
	// (hard stop), the first one ends the measuring loop (clean stop).
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	shutdown := make(chan struct{})
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigCh)
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-sigCh:
			close(shutdown)
		}
		select {
		case <-ctx.Done():
		case <-sigCh:
			fmt.Fprintln(stdout, "second signal received; canceling context")
			cancel()
		}
	}()

	var err error
	b.pool, err = openPool(ctx, o.databaseURL)
	if err != nil {
		fmt.Fprintf(stderr, "riverbench: %v\n", err)
		return exitError
	}
	defer b.pool.Close()

	res := &result{NumTotalJobs: o.numTotalJobs, MaxWorkers: o.maxWorkers, Kind: benchKind, CountSource: "subscription"}
	err = b.run(ctx, shutdown, res)
	res.DroppedEvents = b.dropped.Load()
	if err == nil && !res.Complete && !o.insertOnly {
		err = errors.New("stopped before all jobs were worked")
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (--timeout %s)", err, o.timeout)
		}
		res.Error = err.Error()
		fmt.Fprintf(stderr, "riverbench: %v\n", err)
	}
	if o.jsonOut {
		line, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(line))
	}
	if err != nil {
		return exitError
	}
	return exitOK
}

func (b *bench) run(ctx context.Context, shutdown <-chan struct{}, res *result) error {
	o := b.o
	if o.truncate {
		if err := b.reset(ctx); err != nil {
			return err
		}
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, benchmarkWorker{})
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Logger:            b.logger,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.maxWorkers}},
		Schema:            o.schema,
		Workers:           workers,
	})
	if err != nil {
		return fmt.Errorf("river.NewClient: %w", err)
	}

	var (
		numJobsInserted atomic.Int64
		numJobsLeft     atomic.Int64
		numJobsWorked   atomic.Int64
		lastJobWorkedAt atomic.Int64 // UnixNano
	)

	// Subscribe before inserting/starting, as river bench does.
	events, unsubscribe := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: o.chanSize,
		Kinds:    []river.EventKind{river.EventKindJobCancelled, river.EventKindJobCompleted, river.EventKindJobFailed},
	})
	defer unsubscribe()
	countCtx, stopCounting := context.WithCancel(ctx)
	defer stopCounting()
	go func() {
		for {
			select {
			case <-countCtx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				switch {
				case ev.Kind == river.EventKindJobCancelled:
					b.logger.ErrorContext(ctx, "Job unexpectedly cancelled", "job_id", ev.Job.ID)
				case ev.Kind == river.EventKindJobFailed && ev.Job.State == rivertype.JobStateDiscarded:
					b.logger.ErrorContext(ctx, "Job unexpectedly failed and discarded", "job_id", ev.Job.ID)
				}
				lastJobWorkedAt.Store(time.Now().UnixNano())
				numJobsLeft.Add(-1)
				numJobsWorked.Add(1)
			}
		}
	}()

	// river bench's once-a-second available-job count (info log).
	go func() {
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		countSQL := "SELECT count(*) FROM " + b.table("river_job") + " WHERE state = 'available'"
		for {
			select {
			case <-countCtx.Done():
				return
			case <-ticker.C:
				var n int64
				if err := b.pool.QueryRow(countCtx, countSQL).Scan(&n); err != nil {
					if countCtx.Err() == nil {
						b.logger.ErrorContext(ctx, "Error counting jobs", "err", err)
					}
					continue
				}
				b.logger.InfoContext(ctx, "Available job count", "num_jobs", n)
			}
		}
	}()

	if o.skipInsert {
		var n int64
		q := "SELECT count(*) FROM " + b.table("river_job") + " WHERE kind = $1 AND state = 'available' AND queue = 'default'"
		if err := b.pool.QueryRow(ctx, q, benchKind).Scan(&n); err != nil {
			return fmt.Errorf("count pre-inserted jobs: %w", err)
		}
		if n < int64(o.numTotalJobs) {
			return fmt.Errorf("--skip-insert: only %d available %q jobs in queue default, want %d", n, benchKind, o.numTotalJobs)
		}
		if n > int64(o.numTotalJobs) {
			fmt.Fprintf(b.stderr, "riverbench: warning: %d available %q jobs, more than --num-total-jobs %d; the run ends once %d are worked\n",
				n, benchKind, o.numTotalJobs, o.numTotalJobs)
		}
		numJobsLeft.Store(int64(o.numTotalJobs))
	} else {
		insertStart := time.Now()
		if err := b.insertJobs(ctx, client, shutdown, &numJobsInserted, &numJobsLeft); err != nil {
			return err
		}
		d := time.Since(insertStart)
		res.TotalJobsInserted = numJobsInserted.Load()
		res.InsertSeconds = d.Seconds()
		res.InsertJobsPerSec = float64(res.TotalJobsInserted) / d.Seconds()
		fmt.Fprintf(b.stdout, "riverbench: inserted %d jobs in %s (%.1f jobs/s)\n",
			res.TotalJobsInserted, d.Round(time.Millisecond), res.InsertJobsPerSec)
		if o.insertOnly {
			return nil
		}
	}
	select {
	case <-shutdown:
		return errors.New("interrupted before the client started")
	default:
	}

	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("client.Start: %w", err)
	}
	start := time.Now()
	defer func() {
		stopCtx, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelStop()
		if err := client.Stop(stopCtx); err != nil {
			fmt.Fprintf(b.stderr, "riverbench: client.Stop: %v; cancelling work\n", err)
			hardCtx, cancelHard := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelHard()
			_ = client.StopAndCancel(hardCtx)
		}
	}()

	var (
		firstRun            = true
		numJobsInsertedLast int64
		numJobsWorkedLast   int64
		ticker              = time.NewTicker(iterationPeriod)
		loopErr             error
		stalledTicks        int
	)
	defer ticker.Stop()
	// numJobsInserted counts this run's inserts; in --skip-insert mode the
	// progress lines show 0 inserted, as river bench would for a run that
	// inserted nothing.
loop:
	for {
		var (
			insertedSinceLast = numJobsInserted.Load() - numJobsInsertedLast
			workedSinceLast   = numJobsWorked.Load() - numJobsWorkedLast
		)
		period := iterationPeriod
		if firstRun {
			period = 0
		}
		fmt.Fprintf(b.stdout, "bench: jobs worked [ %10d ], inserted [ %10d ], job/sec [ %10.1f ] [%s]\n",
			workedSinceLast, insertedSinceLast, float64(workedSinceLast)/iterationPeriod.Seconds(), period)
		numJobsInsertedLast = numJobsInserted.Load()
		numJobsWorkedLast = numJobsWorked.Load()

		if numJobsLeft.Load() < 1 {
			res.Complete = true
			break
		}

		// Safety net for dropped subscription events: when a whole period
		// brought no event (or River reported drops), ask river_job whether
		// anything is still outstanding.
		if !firstRun && (workedSinceLast == 0 || b.dropped.Load() > 0) {
			stalledTicks++
			left, lastFinalized, err := b.outstanding(ctx)
			if err != nil {
				b.logger.ErrorContext(ctx, "Error counting outstanding jobs", "err", err)
			} else if left == 0 && (b.dropped.Load() > 0 || stalledTicks >= 2) {
				fmt.Fprintf(b.stderr, "riverbench: subscription saw %d of %d jobs (%d events dropped); river_job shows none outstanding, counting from river_job\n",
					numJobsWorked.Load(), o.numTotalJobs, b.dropped.Load())
				res.CountSource = "river_job"
				numJobsWorked.Store(int64(o.numTotalJobs))
				if lastFinalized.After(start) {
					lastJobWorkedAt.Store(lastFinalized.UnixNano())
				}
				res.Complete = true
				break
			}
		} else {
			stalledTicks = 0
		}
		firstRun = false

		select {
		case <-ctx.Done():
			loopErr = ctx.Err()
			break loop
		case <-shutdown:
			break loop
		case <-ticker.C:
		}
	}

	worked := numJobsWorked.Load()
	runPeriod := time.Duration(lastJobWorkedAt.Load() - start.UnixNano())
	if lastJobWorkedAt.Load() == 0 {
		runPeriod = 0
	}
	jobsPerSec := float64(worked) / runPeriod.Seconds()
	if runPeriod <= 0 {
		jobsPerSec = 0
	}
	fmt.Fprintf(b.stdout, "bench: total jobs worked [ %10d ], total jobs inserted [ %10d ], overall job/sec [ %10.1f ], running %s\n",
		worked, numJobsInserted.Load(), jobsPerSec, runPeriod)
	res.TotalJobsWorked = worked
	res.TotalJobsInserted = numJobsInserted.Load()
	res.JobsPerSec = jobsPerSec
	res.ElapsedSeconds = runPeriod.Seconds()
	res.Elapsed = runPeriod.String()
	return loopErr
}

// insertJobs inserts N jobs {"num": k}, k = 1..N, with InsertMany in batches
// of 5,000 (the last one trimmed), each its own transaction.
func (b *bench) insertJobs(ctx context.Context, client *river.Client[pgx.Tx], shutdown <-chan struct{}, inserted, left *atomic.Int64) error {
	params := make([]river.InsertManyParams, 0, insertBatchSize)
	jobNum := 0
	for inserted.Load() < int64(b.o.numTotalJobs) {
		n := min(insertBatchSize, b.o.numTotalJobs-int(inserted.Load()))
		params = params[:0]
		for range n {
			jobNum++
			params = append(params, river.InsertManyParams{Args: BenchmarkArgs{Num: jobNum}})
		}
		if _, err := client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("InsertMany (after %d jobs): %w", inserted.Load(), err)
		}
		inserted.Add(int64(n))
		left.Add(int64(n))
		select {
		case <-shutdown:
			return errors.New("interrupted while inserting")
		default:
		}
	}
	return nil
}

// reset empties River's main-line tables as river bench does (the driver's
// TableTruncate of GetMigrationTruncateTables(main, latest)) and VACUUM FULLs
// river_job.
func (b *bench) reset(ctx context.Context) error {
	tables := []string{"river_job", "river_leader", "river_queue", "river_notification"}
	for i, t := range tables {
		tables[i] = b.table(t)
	}
	if _, err := b.pool.Exec(ctx, "TRUNCATE TABLE "+strings.Join(tables, ", ")); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	if _, err := b.pool.Exec(ctx, "VACUUM FULL "+b.table("river_job")); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

// outstanding returns how many benchmark jobs are not finalized yet and the
// latest finalized_at among them (the executors' Go clock).
func (b *bench) outstanding(ctx context.Context) (int64, time.Time, error) {
	var (
		left int64
		last *time.Time
	)
	q := "SELECT count(*) FILTER (WHERE state NOT IN ('completed', 'cancelled', 'discarded')), max(finalized_at) FROM " +
		b.table("river_job") + " WHERE kind = $1"
	if err := b.pool.QueryRow(ctx, q, benchKind).Scan(&left, &last); err != nil {
		return 0, time.Time{}, err
	}
	if last == nil {
		return left, time.Time{}, nil
	}
	return left, *last, nil
}

// openPool opens a pool the way River's CLI does: application_name,
// statement_timeout 10 s and idle_in_transaction_session_timeout 11 s unless
// the URL sets them.
func openPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("bad --database-url: %w", err)
	}
	params := cfg.ConnConfig.RuntimeParams
	setIfUnset := func(name, val string) {
		if params[name] == "" {
			params[name] = val
		}
	}
	setIfUnset("application_name", "riverbench")
	setIfUnset("idle_in_transaction_session_timeout", strconv.Itoa(11_000))
	setIfUnset("statement_timeout", strconv.Itoa(10_000))
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

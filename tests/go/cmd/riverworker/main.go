// Command riverworker runs a real River Go client (River v0.51.2, pgx v5
// driver) that works jobs, to interoperate with Tributary's C agent in the same
// database: Go and C workers sharing queues, and leader election between them.
//
//	riverworker --database-url URL [--schema S] [--queue default:100 ...]
//	            [--poll-only] [--id CLIENTID] [--fetch-poll-interval D]
//	            [--duration D] [--status-interval 200ms]
//
// Registered kinds:
//
//	tributary.noop   returns nil
//	tributary.sleep  {"ms":N}: sleeps N ms, returning early with the context's
//	                 error when the job's context is cancelled
//	tributary.fail   {"probability":p,"message":s}: fails with probability p
//	                 (error text s), else succeeds
//
// The client is configured like a default River client: LISTEN/NOTIFY (unless
// --poll-only), leader election and leader-only maintenance all on.
//
// Every --status-interval it prints one JSON line on stdout:
//
//	{"t":"<RFC3339Nano>","client_id":"…","is_leader":bool,"completed":n,"failed":n,"leader_id":"…"}
//
// completed/failed count this client's job_completed/job_failed events
// (failed includes retryable and discarded outcomes). On SIGTERM/SIGINT or
// after --duration it stops the client (Client.Stop, bounded by
// --stop-timeout, then StopAndCancel) and prints a last line with
// "final":true. Exit status 0 on a clean stop, 1 on a runtime error, 2 on a
// usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// ---- job kinds ----

// NoopArgs is tributary.noop; extra args fields are ignored.
type NoopArgs struct{}

func (NoopArgs) Kind() string { return "tributary.noop" }

type noopWorker struct {
	river.WorkerDefaults[NoopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[NoopArgs]) error { return nil }

// SleepArgs is tributary.sleep.
type SleepArgs struct {
	MS int64 `json:"ms"`
}

func (SleepArgs) Kind() string { return "tributary.sleep" }

type sleepWorker struct {
	river.WorkerDefaults[SleepArgs]
}

func (sleepWorker) Work(ctx context.Context, job *river.Job[SleepArgs]) error {
	if job.Args.MS <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(job.Args.MS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FailArgs is tributary.fail.
type FailArgs struct {
	Probability float64 `json:"probability"`
	Message     string  `json:"message"`
}

func (FailArgs) Kind() string { return "tributary.fail" }

type failWorker struct {
	river.WorkerDefaults[FailArgs]
}

func (failWorker) Work(_ context.Context, job *river.Job[FailArgs]) error {
	if rand.Float64() < job.Args.Probability {
		msg := job.Args.Message
		if msg == "" {
			msg = "tributary.fail: intentional failure"
		}
		return errors.New(msg)
	}
	return nil
}

// ---- flags ----

type queueFlag map[string]river.QueueConfig

func (q queueFlag) String() string {
	parts := make([]string, 0, len(q))
	for name, cfg := range q {
		parts = append(parts, fmt.Sprintf("%s:%d", name, cfg.MaxWorkers))
	}
	return strings.Join(parts, ",")
}

func (q queueFlag) Set(s string) error {
	name, n, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return fmt.Errorf("want QUEUE:MAX_WORKERS, got %q", s)
	}
	workers, err := strconv.Atoi(n)
	if err != nil || workers < 1 || workers > 10000 {
		return fmt.Errorf("max workers for queue %q must be 1..10000, got %q", name, n)
	}
	if _, dup := q[name]; dup {
		return fmt.Errorf("queue %q given twice", name)
	}
	q[name] = river.QueueConfig{MaxWorkers: workers}
	return nil
}

type options struct {
	databaseURL       string
	schema            string
	queues            queueFlag
	pollOnly          bool
	id                string
	fetchPollInterval time.Duration
	duration          time.Duration
	statusInterval    time.Duration
	stopTimeout       time.Duration
	logLevel          slog.Level
}

func parseFlags(argv []string, stderr io.Writer) (*options, int) {
	fs := flag.NewFlagSet("riverworker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: riverworker --database-url URL [flags]

Runs a River Go client working tributary.noop, tributary.sleep {"ms":N} and
tributary.fail {"probability":p,"message":s}, with leader election and
maintenance on. Prints a JSON status line every --status-interval and a
{"final":true,...} line when it stops (SIGTERM/SIGINT or --duration).
Exit status: 0 clean stop, 1 runtime error, 2 usage error.

flags:
`)
		fs.PrintDefaults()
	}
	o := &options{queues: queueFlag{}}
	var logLevel string
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	fs.StringVar(&o.schema, "schema", "", "schema holding River's tables (default: the connection's search_path)")
	fs.Var(o.queues, "queue", "QUEUE:MAX_WORKERS to work (repeatable; default default:100)")
	fs.BoolVar(&o.pollOnly, "poll-only", false, "River PollOnly mode: no LISTEN, poll for jobs and leadership")
	fs.StringVar(&o.id, "id", "", "client id (default River's <hostname>_<start time>); at most 100 characters")
	fs.DurationVar(&o.fetchPollInterval, "fetch-poll-interval", 0, "River FetchPollInterval (0 = River's default, 1s)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = run until SIGTERM/SIGINT)")
	fs.DurationVar(&o.statusInterval, "status-interval", 200*time.Millisecond, "interval between JSON status lines")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "time Client.Stop may take before running jobs are cancelled")
	fs.StringVar(&logLevel, "log-level", "warn", "River's log level on stderr: debug, info, warn or error")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	usageErr := func(format string, a ...any) (*options, int) {
		fmt.Fprintf(stderr, "riverworker: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run riverworker -h for usage")
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if o.databaseURL == "" {
		return usageErr("--database-url is required")
	}
	if len(o.queues) == 0 {
		o.queues[river.QueueDefault] = river.QueueConfig{MaxWorkers: 100}
	}
	if len(o.id) > 100 {
		return usageErr("--id must be at most 100 characters")
	}
	if o.fetchPollInterval < 0 {
		return usageErr("--fetch-poll-interval must not be negative")
	}
	if o.duration < 0 {
		return usageErr("--duration must not be negative")
	}
	if o.statusInterval < 10*time.Millisecond {
		return usageErr("--status-interval must be at least 10ms")
	}
	if o.stopTimeout <= 0 {
		return usageErr("--stop-timeout must be positive")
	}
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return usageErr("--log-level: %v", err)
	}
	return o, -1
}

// ---- status ----

type status struct {
	Final     bool   `json:"final,omitempty"`
	T         string `json:"t"`
	ClientID  string `json:"client_id"`
	IsLeader  bool   `json:"is_leader"`
	Completed int64  `json:"completed"`
	Failed    int64  `json:"failed"`
	LeaderID  string `json:"leader_id,omitempty"`
	// Dropped counts subscription events River dropped (its buffer was
	// full); completed/failed are then undercounts.
	Dropped   int64  `json:"dropped_events,omitempty"`
	LeaderErr string `json:"leader_error,omitempty"`
	Error     string `json:"error,omitempty"`
}

// leaderQuerier reports the current leader. River v0.51.2 has no public API
// for "is this client the leader": the elector (internal/leadership) only
// publishes its state to internal subscribers, and it logs "Gained leadership"
// at debug level. So the truth is read where River keeps it, the river_leader
// table: an unexpired row whose leader_id is our client id means we lead. (A
// Go leader that cannot renew steps down locally 1 s before expires_at, so the
// two views can differ by about a second at a hand-over.)
type leaderQuerier struct {
	pool *pgxpool.Pool
	sql  string
}

func newLeaderQuerier(pool *pgxpool.Pool, schema string) *leaderQuerier {
	table := "river_leader"
	if schema != "" {
		table = pgx.Identifier{schema}.Sanitize() + ".river_leader"
	}
	return &leaderQuerier{pool: pool, sql: "SELECT leader_id FROM " + table + " WHERE expires_at > now()"}
}

func (l *leaderQuerier) leader(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var id string
	err := l.pool.QueryRow(ctx, l.sql).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
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

func (h dropCounter) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || h.Handler.Enabled(ctx, level)
}

func (h dropCounter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dropCounter{Handler: h.Handler.WithAttrs(attrs), n: h.n}
}

func (h dropCounter) WithGroup(name string) slog.Handler {
	return dropCounter{Handler: h.Handler.WithGroup(name), n: h.n}
}

// ---- main ----

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	o, code := parseFlags(argv, stderr)
	if code >= 0 {
		return code
	}

	// Signals: the first SIGTERM/SIGINT starts a clean stop.
	sigCh := make(chan os.Signal, 2)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigCh)

	ctx := context.Background()
	pool, err := openPool(ctx, o.databaseURL)
	if err != nil {
		fmt.Fprintf(stderr, "riverworker: %v\n", err)
		return exitError
	}
	defer pool.Close()

	var dropped atomic.Int64
	logger := slog.New(dropCounter{
		Handler: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}),
		n:       &dropped,
	})

	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	river.AddWorker(workers, sleepWorker{})
	river.AddWorker(workers, failWorker{})

	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		FetchPollInterval: o.fetchPollInterval,
		ID:                o.id,
		Logger:            logger,
		PollOnly:          o.pollOnly,
		Queues:            o.queues,
		Schema:            o.schema,
		Workers:           workers,
	})
	if err != nil {
		fmt.Fprintf(stderr, "riverworker: river.NewClient: %v\n", err)
		return exitUsage // configuration River rejected (bad queue name, id, interval)
	}
	clientID := client.ID()

	events, unsubscribe := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: 100_000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed},
	})
	defer unsubscribe()
	var completed, failed atomic.Int64
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range events { // closed by River when the client stops
			switch ev.Kind {
			case river.EventKindJobCompleted:
				completed.Add(1)
			case river.EventKindJobFailed:
				failed.Add(1)
			}
		}
	}()

	// The work context is never cancelled by us: stopping goes through
	// Client.Stop / StopAndCancel so that River resigns leadership cleanly.
	if err := client.Start(context.Background()); err != nil {
		fmt.Fprintf(stderr, "riverworker: client.Start: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stderr, "riverworker: client %s started (queues %s, poll-only %v)\n", clientID, o.queues, o.pollOnly)

	leaders := newLeaderQuerier(pool, o.schema)
	var outMu sync.Mutex
	emit := func(s status) {
		s.T = time.Now().UTC().Format(time.RFC3339Nano)
		s.ClientID = clientID
		s.Completed = completed.Load()
		s.Failed = failed.Load()
		s.Dropped = dropped.Load()
		line, _ := json.Marshal(s)
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = stdout.Write(append(line, '\n'))
	}
	leaderStatus := func(ctx context.Context) status {
		var s status
		id, err := leaders.leader(ctx)
		if err != nil {
			s.LeaderErr = err.Error()
		}
		s.LeaderID = id
		s.IsLeader = id != "" && id == clientID
		return s
	}

	var deadline <-chan time.Time
	if o.duration > 0 {
		timer := time.NewTimer(o.duration)
		defer timer.Stop()
		deadline = timer.C
	}
	ticker := time.NewTicker(o.statusInterval)
	defer ticker.Stop()

	exit := exitOK
	var stopReason string
loop:
	for {
		select {
		case <-ticker.C:
			emit(leaderStatus(ctx))
		case sig := <-sigCh:
			stopReason = "signal " + sig.String()
			break loop
		case <-deadline:
			stopReason = "duration " + o.duration.String() + " elapsed"
			break loop
		case <-client.Stopped():
			stopReason = "client stopped unexpectedly"
			exit = exitError
			break loop
		}
	}
	fmt.Fprintf(stderr, "riverworker: stopping (%s)\n", stopReason)

	var stopErr error
	stopCtx, cancelStop := context.WithTimeout(ctx, o.stopTimeout)
	stopErr = client.Stop(stopCtx)
	cancelStop()
	if stopErr != nil {
		fmt.Fprintf(stderr, "riverworker: Stop did not finish within %s (%v); cancelling running jobs\n", o.stopTimeout, stopErr)
		hardCtx, cancelHard := context.WithTimeout(ctx, 10*time.Second)
		if err := client.StopAndCancel(hardCtx); err != nil {
			stopErr = fmt.Errorf("StopAndCancel: %w", err)
		} else {
			stopErr = nil // stopped, though running jobs were cancelled
		}
		cancelHard()
	}

	// The subscription channel is closed once the client has stopped; wait
	// (bounded) so the final counts include the last write-backs.
	select {
	case <-eventsDone:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(stderr, "riverworker: subscription not closed 5s after stop; final counts may be short")
	}

	final := leaderStatus(ctx)
	final.Final = true
	if stopErr != nil {
		final.Error = stopErr.Error()
		exit = exitError
	} else if exit != exitOK {
		final.Error = stopReason
	}
	emit(final)
	if stopErr != nil {
		fmt.Fprintf(stderr, "riverworker: %v\n", stopErr)
	}
	return exit
}

func openPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("bad --database-url: %w", err)
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "riverworker"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// Command riverinsert inserts jobs into a River database, either through
// River's own Go client or with raw SQL the way a non-Go River inserter does.
//
//	riverinsert --database-url URL --count 1000 [--kind K] [--args JSON]
//	            [--queue Q] [--priority P] [--max-attempts N]
//	            [--scheduled-in D] [--tags a,b] [--batch N]
//	            [--method river|river-copy|sql] [--print-ids]
//
// Methods:
//
//	river       River's client, Client.InsertMany: one multi-row
//	            INSERT ... RETURNING per batch, in its own transaction, with
//	            River's pg_notify on <schema>.river_insert (rate-limited by the
//	            client to one per queue per 100 ms, River's FetchCooldown).
//	river-copy  River's client, Client.InsertManyFast (COPY FROM); returns no
//	            ids, so --print-ids is refused.
//	sql         raw SQL: per batch one transaction holding a multi-row
//	            INSERT INTO river_job (args, kind, max_attempts, metadata,
//	            priority, queue, scheduled_at, state, tags) VALUES ... and, for
//	            jobs inserted as available, one
//	            SELECT pg_notify('<schema>.river_insert', '{"queue":"Q"}').
//
// Output: with --print-ids the new job ids one per line, then the summary
// line "inserted N jobs in T (R jobs/s)". Exit status 0 on success, 1 on a
// runtime error (database, insert), 2 on a usage error.
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

	// Each row of the sql method's VALUES list takes this many bind
	// parameters; PostgreSQL allows at most 65535 per statement.
	sqlParamsPerRow = 9
	sqlMaxBatch     = 65535 / sqlParamsPerRow
)

type options struct {
	databaseURL string
	schema      string
	count       int
	kind        string
	args        json.RawMessage
	queue       string
	priority    int
	maxAttempts int
	scheduledIn time.Duration
	tags        []string
	batch       int
	method      string
	printIDs    bool
	timeout     time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	opts, code := parseFlags(argv, stderr)
	if code >= 0 {
		return code
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()

	pool, err := openPool(ctx, opts.databaseURL)
	if err != nil {
		fmt.Fprintf(stderr, "riverinsert: %v\n", err)
		return exitError
	}
	defer pool.Close()

	start := time.Now()
	var ids []int64
	switch opts.method {
	case "river", "river-copy":
		ids, err = insertWithRiver(ctx, pool, opts, stderr)
	case "sql":
		ids, err = insertWithSQL(ctx, pool, opts)
	}
	elapsed := time.Since(start)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (--timeout %s exceeded)", err, opts.timeout)
		}
		fmt.Fprintf(stderr, "riverinsert: %v\n", err)
		return exitError
	}

	if opts.printIDs {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(strconv.FormatInt(id, 10))
			b.WriteByte('\n')
		}
		_, _ = io.WriteString(stdout, b.String())
	}
	rate := float64(opts.count) / elapsed.Seconds()
	fmt.Fprintf(stdout, "inserted %d jobs in %s (%.1f jobs/s)\n", opts.count, elapsed.Round(time.Microsecond), rate)
	return exitOK
}

// parseFlags returns the options and -1, or an exit code to return now.
func parseFlags(argv []string, stderr io.Writer) (*options, int) {
	fs := flag.NewFlagSet("riverinsert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: riverinsert --database-url URL [flags]

Inserts --count jobs into River's river_job table, with River's Go client
(--method river: InsertMany; river-copy: InsertManyFast/COPY) or with raw SQL
the way a non-Go River inserter does (--method sql: multi-row INSERT plus
pg_notify on <schema>.river_insert in the same transaction).
Prints "inserted N jobs in T (R jobs/s)"; with --print-ids the ids first.
Exit status: 0 ok, 1 runtime error, 2 usage error.

flags:
`)
		fs.PrintDefaults()
	}

	o := &options{}
	var argsJSON, tags string
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	fs.StringVar(&o.schema, "schema", "", "schema holding River's tables (default: the connection's search_path)")
	fs.IntVar(&o.count, "count", 1, "number of jobs to insert")
	fs.StringVar(&o.kind, "kind", "tributary.noop", "job kind")
	fs.StringVar(&argsJSON, "args", "{}", "job args as a JSON object (the same for every job)")
	fs.StringVar(&o.queue, "queue", "default", "queue name")
	fs.IntVar(&o.priority, "priority", 1, "priority, 1 (highest) to 4")
	fs.IntVar(&o.maxAttempts, "max-attempts", 25, "max_attempts (River's default is 25)")
	fs.DurationVar(&o.scheduledIn, "scheduled-in", 0, "schedule the jobs this far in the future (state 'scheduled'); 0 = available now")
	fs.StringVar(&tags, "tags", "", "comma-separated tags")
	fs.IntVar(&o.batch, "batch", 1000, fmt.Sprintf("jobs per insert statement and transaction (sql method: at most %d)", sqlMaxBatch))
	fs.StringVar(&o.method, "method", "river", "insert path: river (InsertMany), river-copy (InsertManyFast), or sql (raw SQL)")
	fs.BoolVar(&o.printIDs, "print-ids", false, "print the inserted job ids, one per line, before the summary")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")

	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, exitOK
		}
		return nil, exitUsage
	}
	usageErr := func(format string, a ...any) (*options, int) {
		fmt.Fprintf(stderr, "riverinsert: "+format+"\n", a...)
		fmt.Fprintln(stderr, "run riverinsert -h for usage")
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if o.databaseURL == "" {
		return usageErr("--database-url is required")
	}
	if o.count < 1 {
		return usageErr("--count must be at least 1, got %d", o.count)
	}
	if o.kind == "" {
		return usageErr("--kind must not be empty")
	}
	var argsVal any
	if err := json.Unmarshal([]byte(argsJSON), &argsVal); err != nil {
		return usageErr("--args is not valid JSON: %v", err)
	}
	if _, ok := argsVal.(map[string]any); !ok {
		return usageErr("--args must be a JSON object, got %s", argsJSON)
	}
	compact, _ := json.Marshal(argsVal)
	o.args = compact
	if o.queue == "" {
		return usageErr("--queue must not be empty")
	}
	if o.priority < 1 || o.priority > 4 {
		return usageErr("--priority must be 1..4, got %d", o.priority)
	}
	if o.maxAttempts < 1 || o.maxAttempts > 32767 {
		return usageErr("--max-attempts must be 1..32767, got %d", o.maxAttempts)
	}
	if o.scheduledIn < 0 {
		return usageErr("--scheduled-in must not be negative")
	}
	o.tags = []string{}
	for _, tag := range strings.Split(tags, ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			o.tags = append(o.tags, tag)
		}
	}
	switch o.method {
	case "river", "river-copy", "sql":
	default:
		return usageErr("--method must be river, river-copy or sql, got %q", o.method)
	}
	if o.batch < 1 {
		return usageErr("--batch must be at least 1, got %d", o.batch)
	}
	if o.method == "sql" && o.batch > sqlMaxBatch {
		return usageErr("--batch must be at most %d with --method sql (PostgreSQL's 65535 bind parameters, %d per row)", sqlMaxBatch, sqlParamsPerRow)
	}
	if o.method == "river-copy" && o.printIDs {
		return usageErr("--print-ids is not possible with --method river-copy (COPY returns no ids)")
	}
	if o.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	return o, -1
}

func openPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("bad --database-url: %w", err)
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "riverinsert"
	}
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

// rawArgs is a river.JobArgs whose kind and JSON encoding are chosen at run
// time: River calls Kind() for the job's kind and json.Marshal(args) for the
// args column, so MarshalJSON hands back the --args object verbatim.
type rawArgs struct {
	kind string
	args json.RawMessage
}

func (a rawArgs) Kind() string                 { return a.kind }
func (a rawArgs) MarshalJSON() ([]byte, error) { return a.args, nil }

func insertWithRiver(ctx context.Context, pool *pgxpool.Pool, o *options, stderr io.Writer) ([]int64, error) {
	// An insert-only client: no Queues and no Workers, so nothing is fetched,
	// no leader election runs, and InsertMany accepts any kind.
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Schema: o.schema,
	})
	if err != nil {
		return nil, fmt.Errorf("river.NewClient: %w", err)
	}

	opts := &river.InsertOpts{
		MaxAttempts: o.maxAttempts,
		Priority:    o.priority,
		Queue:       o.queue,
		Tags:        o.tags,
	}
	args := rawArgs{kind: o.kind, args: o.args}
	ids := make([]int64, 0, o.count)
	params := make([]river.InsertManyParams, 0, min(o.batch, o.count))
	for done := 0; done < o.count; {
		n := min(o.batch, o.count-done)
		if o.scheduledIn > 0 {
			opts.ScheduledAt = time.Now().Add(o.scheduledIn)
		}
		params = params[:0]
		for range n {
			params = append(params, river.InsertManyParams{Args: args, InsertOpts: opts})
		}
		if o.method == "river-copy" {
			got, err := client.InsertManyFast(ctx, params)
			if err != nil {
				return nil, fmt.Errorf("InsertManyFast (after %d jobs): %w", done, err)
			}
			if got != n {
				return nil, fmt.Errorf("InsertManyFast inserted %d jobs, want %d", got, n)
			}
		} else {
			res, err := client.InsertMany(ctx, params)
			if err != nil {
				return nil, fmt.Errorf("InsertMany (after %d jobs): %w", done, err)
			}
			if len(res) != n {
				return nil, fmt.Errorf("InsertMany returned %d results, want %d", len(res), n)
			}
			for _, r := range res {
				ids = append(ids, r.Job.ID)
			}
		}
		done += n
	}
	return ids, nil
}

func insertWithSQL(ctx context.Context, pool *pgxpool.Pool, o *options) ([]int64, error) {
	table := "river_job"
	stateType := "river_job_state"
	var schemaArg any // NULL: the channel takes current_schema(), as River does
	if o.schema != "" {
		q := pgx.Identifier{o.schema}.Sanitize()
		table = q + ".river_job"
		stateType = q + ".river_job_state"
		schemaArg = o.schema
	}
	state := "available"
	if o.scheduledIn > 0 {
		state = "scheduled"
	}
	notifyPayload, _ := json.Marshal(map[string]string{"queue": o.queue})

	// One statement text per batch size (at most two: full and last).
	statements := map[int]string{}
	statement := func(n int) string {
		if s, ok := statements[n]; ok {
			return s
		}
		var b strings.Builder
		b.WriteString("INSERT INTO " + table +
			" (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags) VALUES ")
		for i := range n {
			p := i*sqlParamsPerRow + 1
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($%d::jsonb, $%d::text, $%d::smallint, $%d::jsonb, $%d::smallint, $%d::text, "+
				"coalesce($%d::timestamptz, now()), $%d::%s, $%d::varchar(255)[])",
				p, p+1, p+2, p+3, p+4, p+5, p+6, p+7, stateType, p+8)
		}
		b.WriteString(" RETURNING id")
		statements[n] = b.String()
		return statements[n]
	}

	args := string(o.args)
	ids := make([]int64, 0, o.count)
	values := make([]any, 0, min(o.batch, o.count)*sqlParamsPerRow)
	for done := 0; done < o.count; {
		n := min(o.batch, o.count-done)
		// scheduled_at: NULL (DB now()) for available jobs; for scheduled ones
		// the inserter's clock plus the delay, as River's client does.
		var scheduledAt *time.Time
		if o.scheduledIn > 0 {
			t := time.Now().Add(o.scheduledIn).UTC()
			scheduledAt = &t
		}
		values = values[:0]
		for range n {
			values = append(values, args, o.kind, int16(o.maxAttempts), "{}", int16(o.priority),
				o.queue, scheduledAt, state, o.tags)
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, statement(n), values...)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			if len(got) != n {
				return fmt.Errorf("INSERT returned %d ids, want %d", len(got), n)
			}
			ids = append(ids, got...)
			if state == "available" {
				// Once per transaction for its (single) queue, like River's
				// PGNotifyMany: topic coalesce(schema, current_schema()) || '.river_insert'.
				if _, err := tx.Exec(ctx,
					"SELECT pg_notify(coalesce($1::text, current_schema()) || '.river_insert', $2)",
					schemaArg, string(notifyPayload)); err != nil {
					return fmt.Errorf("pg_notify: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("insert (after %d jobs): %w", done, err)
		}
		done += n
	}
	return ids, nil
}

package harness

// River database helpers for the agent tests: River's own migrator, job
// inserts the way a non-Go River inserter does them (raw SQL plus pg_notify
// in the same transaction), reading river_job rows back, and the agent's
// NDJSON event stream.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// MigrateRiver applies River's migrations (line main, all versions) to the
// database at dbURL with River's Go migrator.
func MigrateRiver(t testing.TB, dbURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		t.Fatalf("rivermigrate.New: %v", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatalf("River migrate up: %v", err)
	}
}

// NewRiverDB is NewDB followed by MigrateRiver.
func NewRiverDB(t testing.TB) string {
	t.Helper()
	u := NewDB(t)
	MigrateRiver(t, u)
	return u
}

// JobSpec is one row to insert into river_job. Zero values take River's
// defaults (queue "default", max_attempts 25, state available, metadata {},
// scheduled_at now()).
type JobSpec struct {
	Kind        string
	Args        string // JSON; "{}" when empty
	Queue       string
	MaxAttempts int
	Priority    int
	State       string     // "" = available
	ScheduledAt *time.Time // nil = now()
	Metadata    string     // JSON; "{}" when empty
	// For rows planted directly in a given state (rescuer, cleaner tests).
	Attempt     int
	AttemptedAt *time.Time
	FinalizedAt *time.Time
	AttemptedBy []string
	Errors      []string // JSON objects for the errors jsonb[] column
}

// InsertJobs inserts the jobs in one transaction and, for the queues of the
// jobs inserted as 'available', sends pg_notify('public.river_insert',
// '{"queue":"<q>"}') in that same transaction, as River's inserters do.
// It returns the new ids in order.
func InsertJobs(t testing.TB, c *pgx.Conn, jobs ...JobSpec) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ids := make([]int64, 0, len(jobs))
	notify := map[string]bool{}
	for _, j := range jobs {
		if j.Args == "" {
			j.Args = "{}"
		}
		if j.Queue == "" {
			j.Queue = "default"
		}
		if j.MaxAttempts == 0 {
			j.MaxAttempts = 25
		}
		if j.Priority == 0 {
			j.Priority = 1
		}
		if j.State == "" {
			j.State = "available"
		}
		if j.Metadata == "" {
			j.Metadata = "{}"
		}
		var errs []string
		if len(j.Errors) > 0 {
			errs = j.Errors
		}
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO river_job
			(args, kind, max_attempts, priority, queue, state, scheduled_at,
			 metadata, attempt, attempted_at, finalized_at, attempted_by, errors)
			VALUES ($1::jsonb, $2, $3, $4, $5, $6::river_job_state,
			 coalesce($7::timestamptz, now()), $8::jsonb, $9, $10, $11, $12,
			 $13::jsonb[])
			RETURNING id`,
			j.Args, j.Kind, j.MaxAttempts, j.Priority, j.Queue, j.State,
			j.ScheduledAt, j.Metadata, j.Attempt, j.AttemptedAt, j.FinalizedAt,
			j.AttemptedBy, errs).Scan(&id)
		if err != nil {
			t.Fatalf("insert job %+v: %v", j, err)
		}
		ids = append(ids, id)
		if j.State == "available" {
			notify[j.Queue] = true
		}
	}
	for q := range notify {
		payload, _ := json.Marshal(map[string]string{"queue": q})
		if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_insert', $1)`, string(payload)); err != nil {
			t.Fatalf("pg_notify: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return ids
}

// InsertBulk inserts n available jobs of one kind/args/queue with a single
// INSERT ... SELECT FROM generate_series plus the insert notification, in
// batches of at most 'batch' rows per transaction. Returns the number
// inserted.
func InsertBulk(t testing.TB, c *pgx.Conn, n, batch int, kind, args, queue string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if batch <= 0 {
		batch = n
	}
	done := 0
	for done < n {
		k := batch
		if n-done < k {
			k = n - done
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue)
			SELECT $1::jsonb, $2, 25, $3 FROM generate_series(1, $4::int)`, args, kind, queue, k); err != nil {
			_ = tx.Rollback(ctx)
			t.Fatalf("bulk insert: %v", err)
		}
		payload, _ := json.Marshal(map[string]string{"queue": queue})
		if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_insert', $1)`, string(payload)); err != nil {
			_ = tx.Rollback(ctx)
			t.Fatalf("pg_notify: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		done += k
	}
	return done
}

// CancelJob requests cancellation the way River's Client.JobCancel does for
// a running job: metadata.cancel_attempted_at is set and a river_control
// "cancel" notification is sent (built by json_build_object, with spaces),
// in one transaction. A running job stays 'running'.
func CancelJob(t testing.TB, c *pgx.Conn, id int64) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE river_job
		SET metadata = jsonb_set(metadata, '{cancel_attempted_at}', to_jsonb(now()::text))
		WHERE id = $1`, id); err != nil {
		t.Fatalf("cancel update: %v", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '.river_control',
		json_build_object('action', 'cancel', 'job_id', id, 'queue', queue)::text)
		FROM river_job WHERE id = $1`, id); err != nil {
		t.Fatalf("cancel notify: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// AttemptError is one element of river_job.errors, decoded strictly: Keys
// lists the element's keys so a test can check the exact shape.
type AttemptError struct {
	Keys    []string
	At      time.Time
	AtText  string
	Attempt int
	Error   string
	Trace   string
}

// Job is a river_job row.
type Job struct {
	ID          int64
	State       string
	Attempt     int
	MaxAttempts int
	Priority    int
	AttemptedAt *time.Time
	CreatedAt   time.Time
	FinalizedAt *time.Time
	ScheduledAt time.Time
	Kind        string
	Queue       string
	Args        string
	Metadata    map[string]any
	AttemptedBy []string
	Errors      []AttemptError
	// DBNow is the database's now() when the row was read.
	DBNow time.Time
}

const jobColumns = `id, state::text, attempt, max_attempts, priority, attempted_at, created_at,
	finalized_at, scheduled_at, kind, queue, args::text, metadata::text,
	coalesce(attempted_by, '{}'), coalesce(to_jsonb(errors)::text, '[]'), clock_timestamp()`

func scanJob(t testing.TB, row pgx.Row) (*Job, error) {
	t.Helper()
	var j Job
	var meta, errs string
	err := row.Scan(&j.ID, &j.State, &j.Attempt, &j.MaxAttempts, &j.Priority, &j.AttemptedAt,
		&j.CreatedAt, &j.FinalizedAt, &j.ScheduledAt, &j.Kind, &j.Queue, &j.Args,
		&meta, &j.AttemptedBy, &errs, &j.DBNow)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(meta), &j.Metadata); err != nil {
		t.Fatalf("job %d metadata %q: %v", j.ID, meta, err)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(errs), &raw); err != nil {
		t.Fatalf("job %d errors %q: %v", j.ID, errs, err)
	}
	for _, e := range raw {
		var ae AttemptError
		for k := range e {
			ae.Keys = append(ae.Keys, k)
		}
		sort.Strings(ae.Keys)
		ae.AtText, _ = e["at"].(string)
		ae.At, _ = time.Parse(time.RFC3339Nano, ae.AtText)
		if f, ok := e["attempt"].(float64); ok {
			ae.Attempt = int(f)
		} else {
			ae.Attempt = -1
		}
		ae.Error, _ = e["error"].(string)
		ae.Trace, _ = e["trace"].(string)
		j.Errors = append(j.Errors, ae)
	}
	return &j, nil
}

// GetJob reads one river_job row (the test fails if it does not exist).
func GetJob(t testing.TB, c *pgx.Conn, id int64) *Job {
	t.Helper()
	j, err := scanJob(t, c.QueryRow(context.Background(), `SELECT `+jobColumns+` FROM river_job WHERE id = $1`, id))
	if err != nil {
		t.Fatalf("read job %d: %v", id, err)
	}
	return j
}

// JobExists reports whether a river_job row with this id exists.
func JobExists(t testing.TB, c *pgx.Conn, id int64) bool {
	t.Helper()
	return QueryInt(t, c, `SELECT count(*) FROM river_job WHERE id = $1`, id) == 1
}

// WaitJob polls job id until cond holds and returns the row; the test fails
// after timeout, printing the last row.
func WaitJob(t testing.TB, c *pgx.Conn, id int64, timeout time.Duration, what string, cond func(*Job) bool) *Job {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := GetJob(t, c, id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: timed out after %s waiting for %s; row: %s", id, timeout, what, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitState waits until job id is in state.
func WaitState(t testing.TB, c *pgx.Conn, id int64, state string, timeout time.Duration) *Job {
	t.Helper()
	return WaitJob(t, c, id, timeout, "state "+state, func(j *Job) bool { return j.State == state })
}

func (j *Job) String() string {
	b, _ := json.Marshal(j)
	return string(b)
}

// Event is one line of the agent's NDJSON event stream (--events-out).
type Event struct {
	Event           string   `json:"event"`
	ClientID        string   `json:"client_id"`
	JobID           int64    `json:"job_id"`
	Attempt         int      `json:"attempt"`
	MaxAttempts     int      `json:"max_attempts"`
	Queue           string   `json:"queue"`
	Kind            string   `json:"kind"`
	State           string   `json:"state"`
	Priority        int      `json:"priority"`
	Tags            string   `json:"tags"`
	CreatedAt       *string  `json:"created_at"`
	ScheduledAt     *string  `json:"scheduled_at"`
	AttemptedAt     *string  `json:"attempted_at"`
	FinalizedAt     *string  `json:"finalized_at"`
	NextScheduledAt *string  `json:"next_scheduled_at"`
	QueueWaitMs     *float64 `json:"queue_wait_ms"`
	RunMs           *float64 `json:"run_ms"`
	CompleteMs      *float64 `json:"complete_ms"`
	Error           *string  `json:"error"`
	// At: when it happened (database clock); queue_paused/queue_resumed
	// events carry only event, client_id, queue and at.
	At *string `json:"at"`
}

// ReadEvents parses an NDJSON events file; every line must be one complete
// JSON object (a partial or malformed line fails the test). A missing file
// is an empty stream.
func ReadEvents(t testing.TB, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("open events %s: %v", path, err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%s:%d: bad event line %q: %v", path, n, line, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read events %s: %v", path, err)
	}
	return evs
}

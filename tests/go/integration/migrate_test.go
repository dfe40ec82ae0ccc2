package integration

// `tributary migrate` against River's own migrator (River v0.51.2): the
// schema tributary builds, from scratch or on top of a database River left
// at an earlier version, must be indistinguishable from River's, in
// pg_dump output and in pg_catalog.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"tributary/tests/harness"
)

const riverLatest = 8

const newerMsg = "database schema is at River migration version 9, newer than " +
	"this tributary build knows (8); upgrade tributary"

// (a) A fresh `migrate up` equals River's fresh migration.
func TestMigrateFreshMatchesRiver(t *testing.T) {
	t.Parallel()
	a, b := harness.NewDB(t), harness.NewDB(t)
	riverMigrate(t, a, "up")
	r := tribOK(t, "up", "--database-url", b)
	for v := 1; v <= riverLatest; v++ {
		if !strings.Contains(r.stdout, fmt.Sprintf("applying main %d ", v)) {
			t.Errorf("no progress line for version %d:\n%s", v, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "applying main 7 notification_outbox... ok (") {
		t.Errorf("unexpected progress format:\n%s", r.stdout)
	}
	requireSameSchema(t, "fresh", a, b, "public")
	if got := migrationRows(t, b, "public"); len(got) != riverLatest {
		t.Errorf("river_migration rows: %v", got)
	}
}

// (b) The same with a named schema on both sides (and nothing in public).
func TestMigrateNamedSchemaMatchesRiver(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"myschema", `My "odd" Schema`} {
		a, b := harness.NewDB(t), harness.NewDB(t)
		for _, u := range []string{a, b} {
			c := harness.Connect(t, u)
			if _, err := c.Exec(context.Background(), "CREATE SCHEMA "+quoteIdent(schema)); err != nil {
				t.Fatal(err)
			}
		}
		riverMigrate(t, a, "--schema", schema, "up")
		tribOK(t, "up", "--database-url", b, "--schema", schema)
		requireSameSchema(t, "schema "+schema, a, b, schema, "public")
		if n := len(catalog(t, b, "public")["relations"]); n != 0 {
			t.Errorf("schema %s: %d relations leaked into public", schema, n)
		}
		st := tribOK(t, "status", "--database-url", b, "--schema", schema)
		if !strings.Contains(st.stdout, "main: up to date (version 8 of 8)") {
			t.Errorf("status in schema %s:\n%s", schema, st.stdout)
		}
	}
}

// Every intermediate version equals River's at that version (--target-version
// on both sides), so each of our steps reproduces River's step.
func TestMigrateEachVersionMatchesRiver(t *testing.T) {
	t.Parallel()
	for v := 1; v <= riverLatest; v++ {
		a, b := harness.NewDB(t), harness.NewDB(t)
		riverMigrate(t, a, "--target-version", fmt.Sprint(v), "up")
		tribOK(t, "up", "--database-url", b, "--target-version", fmt.Sprint(v))
		requireSameSchema(t, fmt.Sprintf("version %d", v), a, b, "public")
	}
}

// (c) River left the database at version N; tributary finishes the job.
func TestMigrateUpgradesRiverDatabase(t *testing.T) {
	t.Parallel()
	full := harness.NewDB(t)
	riverMigrate(t, full, "up")
	for from := 1; from < riverLatest; from++ {
		for _, schema := range []string{"public", "myschema"} {
			if schema == "myschema" && from != 4 && from != 6 {
				continue
			}
			ref, db := full, harness.NewDB(t)
			args := []string{"--target-version", fmt.Sprint(from)}
			if schema != "public" {
				ref = harness.NewDB(t)
				for _, u := range []string{ref, db} {
					c := harness.Connect(t, u)
					if _, err := c.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
						t.Fatal(err)
					}
				}
				riverMigrate(t, ref, "--schema", schema, "up")
				args = append(args, "--schema", schema)
			}
			riverMigrate(t, db, append(args, "up")...)
			r := tribOK(t, "up", "--database-url", db, "--schema", schema)
			for v := 1; v <= riverLatest; v++ {
				applied := strings.Contains(r.stdout, fmt.Sprintf("applying main %d ", v))
				if applied != (v > from) {
					t.Errorf("from %d: version %d applied=%v\n%s", from, v, applied, r.stdout)
				}
			}
			requireSameSchema(t, fmt.Sprintf("River %d + tributary (%s)", from, schema), ref, db, schema)
		}
	}
}

// River's migrator accepts a tributary-built schema as its own: nothing to
// apply, and it can migrate it down. Going down and up again leaves dropped
// columns behind (attnum gaps), so the reference is a River database that
// took the same path with River's migrator alone.
func TestMigrateRiverAcceptsTributarySchema(t *testing.T) {
	t.Parallel()
	a, b := harness.NewDB(t), harness.NewDB(t)
	riverMigrate(t, a, "up")
	tribOK(t, "up", "--database-url", b)
	if out := riverMigrate(t, b, "up"); !strings.Contains(out, "no migrations to apply") {
		t.Errorf("River applied something on a tributary schema:\n%s", out)
	}
	for _, u := range []string{a, b} {
		riverMigrate(t, u, "--target-version", "3", "down")
	}
	if got := migrationRows(t, b, "public"); strings.Join(got, ",") != "main/1,main/2,main/3" {
		t.Fatalf("after River down to 3: %v", got)
	}
	riverMigrate(t, a, "up")
	tribOK(t, "up", "--database-url", b)
	requireSameSchema(t, "down to 3, then up", a, b, "public")
}

// (d) A second `migrate up` is a no-op.
func TestMigrateUpIsIdempotent(t *testing.T) {
	t.Parallel()
	db := harness.NewDB(t)
	tribOK(t, "up", "--database-url", db)
	before := schemaDump(t, db)
	r := tribOK(t, "up", "--database-url", db)
	if strings.Contains(r.stdout, "applying") || !strings.Contains(r.stdout, "up to date") {
		t.Errorf("second run:\n%s", r.stdout)
	}
	if schemaDump(t, db) != before {
		t.Error("second run changed the schema")
	}
	// An already-applied --target-version is also a no-op.
	r = tribOK(t, "up", "--database-url", db, "--target-version", "5")
	if strings.Contains(r.stdout, "applying") {
		t.Errorf("--target-version 5 on version 8:\n%s", r.stdout)
	}
}

// Concurrent runs serialise on the advisory lock: all succeed, each
// version is applied exactly once.
func TestMigrateConcurrentRuns(t *testing.T) {
	t.Parallel()
	a, b := harness.NewDB(t), harness.NewDB(t)
	riverMigrate(t, a, "up")
	const n = 4
	var wg sync.WaitGroup
	results := make([]runResult, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = runBin(t, "tributary", nil, "migrate", "up", "--database-url", b)
		}(i)
	}
	wg.Wait()
	applied := 0
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("run %d: exit %d\n%s%s", i, r.code, r.stdout, r.stderr)
		}
		applied += strings.Count(r.stdout, "applying main ")
	}
	if applied != riverLatest {
		t.Errorf("%d versions applied in total, want %d", applied, riverLatest)
	}
	requireSameSchema(t, "concurrent", a, b, "public")
}

// (e) A database at a newer version than we know is refused (exit 3) and
// reported by status, in both river_migration layouts.
func TestMigrateRefusesNewerVersion(t *testing.T) {
	t.Parallel()
	db := harness.NewDB(t)
	tribOK(t, "up", "--database-url", db)
	c := harness.Connect(t, db)
	if _, err := c.Exec(context.Background(), "INSERT INTO river_migration (line, version) VALUES ('main', 9)"); err != nil {
		t.Fatal(err)
	}
	before := schemaDump(t, db)
	r := trib(t, "up", "--database-url", db)
	if r.code != 3 || !strings.Contains(r.stderr, newerMsg) || strings.Contains(r.stdout, "applying") {
		t.Errorf("up on version 9: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if schemaDump(t, db) != before {
		t.Error("refused run changed the schema")
	}
	r = trib(t, "status", "--database-url", db)
	if r.code != 3 || !strings.Contains(r.stdout, "(unknown to this build)") ||
		!strings.Contains(r.stdout, "main: at version 9, NEWER") || !strings.Contains(r.stderr, newerMsg) {
		t.Errorf("status on version 9: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = trib(t, "status", "--database-url", db, "--json")
	var js struct {
		Newer bool `json:"newer_than_known"`
		Lines []struct {
			Line    string `json:"line"`
			Current int    `json:"current"`
		} `json:"lines"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || r.code != 3 || !js.Newer ||
		len(js.Lines) != 1 || js.Lines[0].Current != 9 {
		t.Errorf("status --json on version 9: exit %d, %v\n%s", r.code, err, r.stdout)
	}

	// Pre-version-5 layout: River at version 3, then a row for version 9.
	old := harness.NewDB(t)
	riverMigrate(t, old, "--target-version", "3", "up")
	c = harness.Connect(t, old)
	if _, err := c.Exec(context.Background(), "INSERT INTO river_migration (version) VALUES (9)"); err != nil {
		t.Fatal(err)
	}
	if r = trib(t, "up", "--database-url", old); r.code != 3 || !strings.Contains(r.stderr, newerMsg) {
		t.Errorf("up on legacy version 9: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// status: no table, the pre-v5 layout, JSON.
func TestMigrateStatus(t *testing.T) {
	t.Parallel()
	db := harness.NewDB(t)
	r := tribOK(t, "status", "--database-url", db)
	if !strings.Contains(r.stdout, "river_migration absent") ||
		!strings.Contains(r.stdout, "main: no version applied yet, 8 pending") {
		t.Errorf("status on an empty database:\n%s", r.stdout)
	}
	riverMigrate(t, db, "--target-version", "3", "up")
	r = tribOK(t, "status", "--database-url", db)
	if !strings.Contains(r.stdout, "layout before River version 5") ||
		!strings.Contains(r.stdout, "main: at version 3 of 8, 5 pending") {
		t.Errorf("status on River version 3:\n%s", r.stdout)
	}
	r = tribOK(t, "status", "--database-url", db, "--json")
	var js struct {
		Schema   string  `json:"schema"`
		Layout   *string `json:"layout"`
		Versions []struct {
			Line      string  `json:"line"`
			Version   int     `json:"version"`
			Name      string  `json:"name"`
			Applied   bool    `json:"applied"`
			AppliedAt *string `json:"applied_at"`
		} `json:"versions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if js.Schema != "public" || js.Layout == nil || *js.Layout != "legacy" || len(js.Versions) != riverLatest {
		t.Fatalf("status --json: %+v", js)
	}
	for _, v := range js.Versions {
		if v.Applied != (v.Version <= 3) || (v.AppliedAt != nil) != v.Applied || v.Name == "" {
			t.Errorf("status --json version %+v", v)
		}
	}
}

// DATABASE_URL and libpq's PG* variables are honoured when no flag is given.
func TestMigrateEnvironment(t *testing.T) {
	t.Parallel()
	db := harness.NewDB(t)
	r := runBin(t, "tributary", []string{"DATABASE_URL=" + db}, "migrate", "up", "--target-version", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "applying main 2 ") {
		t.Fatalf("DATABASE_URL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c := harness.Connect(t, db)
	cfg := c.Config()
	pgEnv := []string{
		"PGHOST=" + cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port),
		"PGUSER=" + cfg.User, "PGDATABASE=" + cfg.Database, "PGSSLMODE=disable",
	}
	r = runBin(t, "tributary", pgEnv, "migrate", "up")
	if r.code != 0 || !strings.Contains(r.stdout, "applying main 8 ") {
		t.Fatalf("PG* variables: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// (f) Bad input and unreachable servers give clear messages and the
// documented exit codes, never a crash.
func TestMigrateErrors(t *testing.T) {
	t.Parallel()
	db := harness.NewDB(t)
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"bad URL", []string{"up", "--database-url", "postgres://[oops"}, 1,
			[]string{"invalid database URL", "--database-url"}},
		{"bad URL key", []string{"status", "--database-url", "nosuchkey=1"}, 1,
			[]string{"invalid database URL"}},
		{"refused", []string{"up", "--database-url", "postgres://postgres@127.0.0.1:1/x?sslmode=disable"}, 1,
			[]string{"cannot connect to PostgreSQL", "host 127.0.0.1", "port 1", "database x"}},
		{"unknown host", []string{"status", "--database-url", "postgres://postgres@host.invalid/x"}, 1,
			[]string{"cannot connect to PostgreSQL", "host.invalid"}},
		{"missing schema", []string{"up", "--database-url", db, "--schema", "nope"}, 1,
			[]string{`schema "nope" does not exist`}},
		{"unknown flag", []string{"up", "--bogus"}, 2, []string{"unknown option '--bogus'"}},
		{"flag needs value", []string{"up", "--schema"}, 2, []string{"'--schema' needs a value"}},
		{"no action", []string{}, 2, []string{"missing action"}},
		{"bad action", []string{"sideways"}, 2, []string{"unknown action 'sideways'"}},
		{"target too high", []string{"up", "--target-version", "9"}, 2, []string{"versions 1..8"}},
		{"target not a number", []string{"up", "--target-version", "x"}, 2, []string{"--target-version"}},
		{"unknown line", []string{"up", "--line", "nope"}, 2, []string{"unknown migration line 'nope'"}},
		{"json on up", []string{"up", "--json"}, 2, []string{"--json"}},
	}
	for _, tc := range cases {
		r := trib(t, tc.args...)
		if r.code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, r.code, tc.code, r.stdout, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, r.stderr)
			}
		}
	}
	if r := runBin(t, "tributary", nil, "--bogus"); r.code != 2 {
		t.Errorf("tributary --bogus: exit %d", r.code)
	}
	if r := runBin(t, "tributary", nil, "nosuchcommand"); r.code != 2 {
		t.Errorf("tributary nosuchcommand: exit %d", r.code)
	}
	for _, args := range [][]string{{"--help"}, {"migrate", "--help"}, {"help", "migrate"}, {"--version"}} {
		r := runBin(t, "tributary", nil, args...)
		if r.code != 0 || r.stdout == "" {
			t.Errorf("tributary %v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if r := runBin(t, "tributary", nil, "--help"); !strings.Contains(r.stdout, "migrate") ||
		!strings.Contains(r.stdout, "Exit status") {
		t.Errorf("tributary --help:\n%s", r.stdout)
	}
}

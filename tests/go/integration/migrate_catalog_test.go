package integration

// Helpers for the migrate tests: running River's migrator and tributary,
// and snapshotting a database's schema so two databases can be compared
// (pg_dump text plus direct pg_catalog queries).

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"tributary/tests/harness"
)

// result of one process run.
type runResult struct {
	stdout, stderr string
	code           int // exit code; -1 when killed by a signal
}

// runBin runs one of the project's binaries with a clean database
// environment (no DATABASE_URL, no PG* variables) plus extraEnv.
func runBin(t *testing.T, name string, extraEnv []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Bin(t, name), args...)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	// Sanitizer builds (-DTRIB_SANITIZE=ON): a report fails the test even
	// when the exit code looked as expected (e.g. 1 on an error path).
	if strings.Contains(res.stderr, "Sanitizer") || strings.Contains(res.stderr, "runtime error:") {
		t.Fatalf("%s %v: sanitizer report:\n%s", name, args, res.stderr)
	}
	return res
}

// riverMigrate runs River's own migrator (tests/go/cmd/rivermigrate) and
// fails the test unless it succeeds.
func riverMigrate(t *testing.T, dbURL string, args ...string) string {
	t.Helper()
	r := runBin(t, "rivermigrate", nil, append([]string{"--database-url", dbURL}, args...)...)
	if r.code != 0 {
		t.Fatalf("rivermigrate %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// trib runs `tributary migrate ...`; the caller checks the result.
func trib(t *testing.T, args ...string) runResult {
	t.Helper()
	r := runBin(t, "tributary", nil, append([]string{"migrate"}, args...)...)
	if r.code < 0 {
		t.Fatalf("tributary migrate %v crashed (signal)\n%s%s", args, r.stdout, r.stderr)
	}
	return r
}

// tribOK runs `tributary migrate ...` and requires exit 0.
func tribOK(t *testing.T, args ...string) runResult {
	t.Helper()
	r := trib(t, args...)
	if r.code != 0 {
		t.Fatalf("tributary migrate %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func pgDumpPath() string {
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return p
	}
	return filepath.Join("/usr/lib/postgresql/15/bin", "pg_dump")
}

// schemaDump is `pg_dump --schema-only --no-owner` of the whole database.
// Only the \restrict / \unrestrict lines are removed: they carry a random
// key that differs on every run (newer pg_dump releases add them). Comment
// and SET lines are identical for identical schemas and are kept.
func schemaDump(t *testing.T, dbURL string) string {
	t.Helper()
	out, err := exec.Command(pgDumpPath(), "--schema-only", "--no-owner", "-d", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, `\restrict `) || strings.HasPrefix(l, `\unrestrict `) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// catalogQueries describe a schema ($1) through pg_catalog. Each row is
// turned into its composite text form, so every column counts.
var catalogQueries = map[string]string{
	"enums": `SELECT t.typname, e.enumlabel, e.enumsortorder
		FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
		JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = $1 ORDER BY t.typname, e.enumsortorder`,
	"relations": `SELECT c.relname, c.relkind, c.relpersistence, c.relhasindex,
			c.relhastriggers, c.relchecks, c.relnatts, c.reloptions, c.relreplident
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 ORDER BY c.relname`,
	"columns": `SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
			a.attnotnull, a.atthasdef, pg_get_expr(d.adbin, d.adrelid), a.attisdropped,
			a.attidentity, a.attgenerated, a.atthasmissing, a.attcollation, a.attstorage
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = $1 AND a.attnum > 0 ORDER BY c.relname, a.attnum`,
	"constraints": `SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid),
			k.convalidated, k.condeferrable, k.condeferred, i.relname AS index_name
		FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
		LEFT JOIN pg_class c ON c.oid = k.conrelid
		LEFT JOIN pg_class i ON i.oid = k.conindid
		WHERE n.nspname = $1 ORDER BY c.relname, k.conname`,
	"indexes": `SELECT i.relname, t.relname, pg_get_indexdef(x.indexrelid), x.indisunique,
			x.indisprimary, x.indisvalid, i.relpersistence
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = i.relnamespace
		WHERE n.nspname = $1 ORDER BY i.relname`,
	"functions": `SELECT p.proname, pg_get_function_identity_arguments(p.oid),
			pg_get_functiondef(p.oid), p.provolatile, p.proparallel, p.prosecdef
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 ORDER BY 1, 2`,
	"sequences": `SELECT c.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement,
			s.seqmax, s.seqmin, s.seqcache, s.seqcycle, c.relpersistence,
			t.relname AS owned_by_table, a.attname AS owned_by_column
		FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass
			AND d.objid = c.oid AND d.deptype = 'a'
			AND d.refclassid = 'pg_class'::regclass
		LEFT JOIN pg_class t ON t.oid = d.refobjid
		LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE n.nspname = $1 ORDER BY c.relname`,
	"triggers": `SELECT c.relname, g.tgname, pg_get_triggerdef(g.oid)
		FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND NOT g.tgisinternal ORDER BY 1, 2`,
	"types": `SELECT t.typname, t.typtype, t.typcategory
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = $1 ORDER BY t.typname`,
}

// catalog snapshots schema 'schema' of a database: the catalog queries
// above plus the (line, version) rows of river_migration.
func catalog(t *testing.T, dbURL, schema string) map[string][]string {
	t.Helper()
	conn := harness.Connect(t, dbURL)
	ctx := context.Background()
	snap := map[string][]string{}
	for name, q := range catalogQueries {
		rows, err := conn.Query(ctx, "SELECT q::text FROM ("+q+") q", schema)
		if err != nil {
			t.Fatalf("catalog query %s: %v", name, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatalf("catalog query %s: %v", name, err)
			}
			snap[name] = append(snap[name], s)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("catalog query %s: %v", name, err)
		}
	}
	snap["river_migration"] = migrationRows(t, dbURL, schema)
	return snap
}

// migrationRows lists river_migration as "line/version", in either layout.
func migrationRows(t *testing.T, dbURL, schema string) []string {
	t.Helper()
	conn := harness.Connect(t, dbURL)
	ctx := context.Background()
	var hasTable, hasLine bool
	err := conn.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = 'river_migration'),
			EXISTS (SELECT 1 FROM information_schema.columns
				WHERE table_schema = $1 AND table_name = 'river_migration' AND column_name = 'line')`,
		schema).Scan(&hasTable, &hasLine)
	if err != nil {
		t.Fatalf("river_migration lookup: %v", err)
	}
	if !hasTable {
		return nil
	}
	line := "'main'"
	if hasLine {
		line = "line"
	}
	q := "SELECT " + line + " || '/' || version FROM " + quoteIdent(schema) +
		".river_migration ORDER BY 1"
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// requireSameSchema fails unless the two databases have identical
// pg_dump output and identical catalog snapshots for the given schemas.
func requireSameSchema(t *testing.T, what, riverURL, tribURL string, schemas ...string) {
	t.Helper()
	if a, b := schemaDump(t, riverURL), schemaDump(t, tribURL); a != b {
		t.Errorf("%s: pg_dump differs (River vs tributary):\n%s", what, lineDiff(a, b))
	}
	for _, s := range schemas {
		a, b := catalog(t, riverURL, s), catalog(t, tribURL, s)
		names := make([]string, 0, len(a))
		for k := range a {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if x, y := strings.Join(a[k], "\n"), strings.Join(b[k], "\n"); x != y {
				t.Errorf("%s: schema %s: catalog %q differs (River vs tributary):\n%s",
					what, s, k, lineDiff(x, y))
			}
		}
	}
}

// lineDiff shows lines present on one side only ("-" River, "+" tributary).
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		for ; n > 0; n-- {
			out = append(out, "- "+l)
		}
		for ; n < 0; n++ {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "(same lines, different order)"
	}
	return strings.Join(out, "\n")
}

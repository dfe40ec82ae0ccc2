// Package harness gives the integration tests real parts: the throwaway
// PostgreSQL server started by scripts/test.sh, a fresh database per test,
// and the project's binaries (agent, coordinator, CLI) as real processes.
//
// Environment (set by scripts/test.sh through ctest):
//
//	TRIB_TEST_PG_URL  URL of the test server's "tributary" database, as a
//	                  superuser. Tests that need Postgres and find none FAIL.
//	TRIB_BIN_DIR      directory holding tributary, tributary-agent and
//	                  tributary-coordinator (normal or sanitizer build).
//	TRIB_SRC_DIR      the source tree (scripts/, sql/).
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminURL returns the test server's URL or fails the test loudly.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TRIB_TEST_PG_URL")
	if u == "" {
		t.Fatal("TRIB_TEST_PG_URL is not set: run the tests through scripts/test.sh (it starts PostgreSQL)")
	}
	return u
}

// BinDir is where the project's executables are.
func BinDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("TRIB_BIN_DIR")
	if d == "" {
		t.Fatal("TRIB_BIN_DIR is not set: run the tests through ctest/scripts/test.sh")
	}
	return d
}

// Bin returns the path of one of the project's executables.
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("binary %s not found: %v", p, err)
	}
	return p
}

// SrcDir is the repository root.
func SrcDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("TRIB_SRC_DIR")
	if d == "" {
		t.Fatal("TRIB_SRC_DIR is not set")
	}
	return d
}

// WithDatabase returns u with its database name replaced.
func WithDatabase(t testing.TB, u, db string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("bad URL %q: %v", u, err)
	}
	pu.Path = "/" + db
	return pu.String()
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewDB creates an empty database for this test and drops it at the end.
// It returns the new database's URL.
func NewDB(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	name := randomName("t_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithDatabase(t, admin, name)
}

// Connect opens a pgx connection closed at the end of the test.
func Connect(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect %s: %v", dbURL, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// QueryInt runs a query returning one integer.
func QueryInt(t testing.TB, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", strings.TrimSpace(sql), err)
	}
	return n
}

// Eventually polls cond every 50 ms until it returns true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Fmt is fmt.Sprintf, re-exported for brevity in tests.
var Fmt = fmt.Sprintf

// Command rivermigrate runs River's own migrator (rivermigrate with the pgx v5
// driver) so integration tests can compare the schema River leaves behind
// with the one `tributary migrate` builds.
//
// Usage:
//
//	rivermigrate [--database-url URL] [--schema NAME] [--target-version N]
//	             [--max-steps N] [--line NAME] up|down|status
//
// The URL defaults to $DATABASE_URL. "up" applies missing versions (all, or
// up to and including --target-version); "down" removes one version, or
// every version above --target-version (-1: remove everything); "status"
// lists the applied versions. Each applied version is printed as
//
//	applied up 7 notification outbox sqlite jsonb and sql cleanup (3ms)
//
// Exit status: 0 success, 1 migration or database error, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("rivermigrate", flag.ContinueOnError)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	schema := fs.String("schema", "", "schema to migrate (default: the connection's current schema)")
	line := fs.String("line", "main", "migration line")
	target := fs.Int("target-version", 0, "up: last version to apply; down: version to leave (-1: remove all)")
	maxSteps := fs.Int("max-steps", 0, "maximum number of versions to apply (0: River's default)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: rivermigrate [flags] up|down|status")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if *dbURL == "" {
		fmt.Fprintln(os.Stderr, "rivermigrate: no database: pass --database-url or set DATABASE_URL")
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rivermigrate: %v\n", err)
		return 1
	}
	defer pool.Close()

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{
		Line:   *line,
		Schema: *schema,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rivermigrate: %v\n", err)
		return 1
	}

	var dir rivermigrate.Direction
	switch fs.Arg(0) {
	case "up":
		dir = rivermigrate.DirectionUp
	case "down":
		dir = rivermigrate.DirectionDown
	case "status":
		versions, err := migrator.ExistingVersions(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rivermigrate: %v\n", err)
			return 1
		}
		for _, v := range versions {
			fmt.Printf("%s %d %s\n", *line, v.Version, v.Name)
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "rivermigrate: unknown direction %q\n", fs.Arg(0))
		return 2
	}

	res, err := migrator.Migrate(ctx, dir, &rivermigrate.MigrateOpts{
		MaxSteps:      *maxSteps,
		TargetVersion: *target,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rivermigrate: %v\n", err)
		return 1
	}
	if len(res.Versions) == 0 {
		fmt.Println("no migrations to apply")
	}
	for _, v := range res.Versions {
		fmt.Printf("applied %s %d %s (%s)\n", res.Direction, v.Version, v.Name, v.Duration.Round(time.Millisecond))
	}
	return 0
}

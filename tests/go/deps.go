// Package tests pins the Go modules the test and benchmark harnesses use:
// River itself (client, migrator, pgx v5 driver) stands beside Tributary's
// agent in interop tests and benchmarks. The product is C; Go lives only here.
package tests

import (
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/riverqueue/river"
	_ "github.com/riverqueue/river/riverdriver/riverpgxv5"
	_ "github.com/riverqueue/river/rivermigrate"
)

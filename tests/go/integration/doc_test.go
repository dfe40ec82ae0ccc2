// Package integration holds the end-to-end tests: real PostgreSQL, real
// tributary processes, River's own Go client beside them.
package integration

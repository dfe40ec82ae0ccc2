package integration

import (
	"context"
	"testing"
	"time"

	"tributary/tests/harness"
)

// Regression (docs/PERFORMANCE.md, "cached generic plans"): an agent idling
// on an empty, freshly analyzed river_job used to end up with a cached
// generic plan for its prepared fetch that joins with sequential scans, so
// that a later burst took seconds per fetch. The agent now plans every
// execution (plan_cache_mode = force_custom_plan). Measured here: about 2 s
// with it, about 40 s without (each fetch scans rows x batch).
func TestAgentPlanAfterIdleOnEmptyTable(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	ctx := context.Background()
	// Analyzed while empty; and no autoanalyze later, which would
	// invalidate a stale plan and hide the problem by luck.
	for _, q := range []string{
		"VACUUM ANALYZE river_job",
		"ALTER TABLE river_job SET (autovacuum_enabled = false)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	a := startAgent(t, dbURL, "", "--queue", "q:500", "--mode", "poll",
		"--poll-interval", "100ms", "--log-level", "debug")
	a.waitReady(t, "q", false)
	time.Sleep(1500 * time.Millisecond) // ~15 idle fetches: past the 5 custom plans

	const n = 20000
	harness.InsertBulk(t, conn, n, 5000, "tributary.noop", "{}", "q")
	t0 := time.Now()
	harness.Eventually(t, 90*time.Second, "20,000 jobs completed", func() bool {
		return harness.QueryInt(t, conn,
			"SELECT count(*) FROM river_job WHERE state = 'completed'") == n
	})
	took := time.Since(t0)
	t.Logf("20,000 jobs after idling on an empty table: %s", took)
	if took > 15*time.Second {
		t.Errorf("burst after idle took %s (stale generic plan?)", took)
	}
	a.stop(t, 20*time.Second)
}

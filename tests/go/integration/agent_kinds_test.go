package integration

import (
	"testing"
	"time"

	"tributary/tests/harness"
)

// --fetch-only-known-kinds (River's FetchOnlyKnownKinds): jobs of kinds the
// agent cannot run stay untouched for other workers; known kinds are worked.
func TestAgentKindsFetchOnlyKnown(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	a := startAgent(t, dbURL, "", "--queue", "q:5", "--fetch-only-known-kinds",
		"--poll-interval", "200ms", "--log-level", "debug")
	a.waitReady(t, "q", true)

	ids := harness.InsertJobs(t, conn,
		harness.JobSpec{Kind: "someone.elses_kind", Queue: "q"},
		harness.JobSpec{Kind: "tributary.noop", Queue: "q"})
	harness.WaitState(t, conn, ids[1], "completed", 5*time.Second)
	time.Sleep(1 * time.Second) // several polls
	if j := harness.GetJob(t, conn, ids[0]); j.State != "available" || j.Attempt != 0 || j.AttemptedAt != nil {
		t.Errorf("a job of an unknown kind was fetched: %s", j)
	}
	a.stop(t, 20*time.Second)
}

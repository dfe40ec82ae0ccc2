package integration

import (
	"context"
	"testing"
	"time"

	"tributary/tests/harness"
)

// A write-back applies only to the attempt the agent worked. When the row
// has moved on to a later attempt meanwhile (a rescue and a fetch by another
// client while this agent was cut off), the late outcome must change
// nothing and emit no event: otherwise the later attempt would be
// finalized by a result that is not its own.
func TestAgentWritebackStaleAttempt(t *testing.T) {
	t.Parallel()
	// fast-path: our outcome is a completion (the completed-only
	// statement); general: a remote cancel makes it a cancellation (the
	// general statement).
	for _, path := range []string{"fast-path", "general"} {
		path := path
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			dbURL := harness.NewRiverDB(t)
			conn := harness.Connect(t, dbURL)
			a := startAgent(t, dbURL, "", "--queue", "q:5", "--log-level", "debug")
			a.waitReady(t, "q", true)

			spec := harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms": 1500}`, Queue: "q"}
			id := harness.InsertJobs(t, conn, spec)[0]
			harness.WaitState(t, conn, id, "running", 5*time.Second)
			// The row moves on to attempt 2, worked by someone else.
			ctx := context.Background()
			if _, err := conn.Exec(ctx, `UPDATE river_job SET attempt = attempt + 1,
				attempted_by = array_append(attempted_by, 'someone_else') WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			if path == "general" {
				harness.CancelJob(t, conn, id)
			}
			time.Sleep(2500 * time.Millisecond)
			j := harness.GetJob(t, conn, id)
			if j.State != "running" || j.Attempt != 2 || j.FinalizedAt != nil || len(j.Errors) != 0 {
				t.Errorf("a stale write-back changed the later attempt: %s", j)
			}
			a.stop(t, 20*time.Second)
			if evs := eventsFor(a.events(t), id); len(evs) != 0 {
				t.Errorf("events for a stale attempt: %+v", evs)
			}
		})
	}
}

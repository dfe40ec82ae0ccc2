package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestAgentWritebackRescued: while the agent works a job, its row stops
// being 'running' the attempt worked -- rescued by the leader (retryable
// with the rescuer's error), or rescued and then worked to completion by
// another client as attempt 2. The agent's late write-back must change
// nothing and publish no event for that job: the rescue is maintenance
// and the next attempt's worker reports its own outcome (else the
// coordinator counts the job twice, issue 5). Both write-back statements:
// fast-path (the job completes) and general (the job times out: an error).
// A control job worked afterwards must get its event, so the event stream
// is known to work.
func TestAgentWritebackRescued(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, move, wantState string
		wantAttempt           int
	}{
		{"rescued", `UPDATE river_job SET state = 'retryable',
			scheduled_at = now() + interval '1 hour',
			errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', attempt,
				'error', 'Stuck job rescued by JobRescuer', 'trace', '')),
			metadata = metadata || '{"river:rescue_count": 1}'
			WHERE id = $1 AND state = 'running' AND attempt = 1`, "retryable", 1},
		{"worked-again", `UPDATE river_job SET state = 'completed', attempt = 2,
			finalized_at = now(), attempted_by = array_append(attempted_by, 'someone_else'),
			errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', 1,
				'error', 'Stuck job rescued by JobRescuer', 'trace', ''))
			WHERE id = $1 AND state = 'running' AND attempt = 1`, "completed", 2},
	}
	for _, path := range []string{"fast-path", "general"} {
		for _, tc := range cases {
			path, tc := path, tc
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dbURL := harness.NewRiverDB(t)
				conn := harness.Connect(t, dbURL)
				args := []string{"--queue", "q:5", "--log-level", "debug"}
				spec := harness.JobSpec{Kind: "tributary.sleep", Args: `{"ms": 3000}`, Queue: "q"}
				if path == "general" {
					// a timeout: an error outcome, the general statement
					args = append(args, "--job-timeout", "3s")
					spec.Args = `{"ms": 20000}`
				}
				a := startAgent(t, dbURL, "", args...)
				a.waitReady(t, "q", true)

				id := harness.InsertJobs(t, conn, spec)[0]
				harness.WaitState(t, conn, id, "running", 5*time.Second)
				tag, err := conn.Exec(context.Background(), tc.move, id)
				if err != nil {
					t.Fatal(err)
				}
				if tag.RowsAffected() != 1 {
					t.Fatalf("job %d was no longer running attempt 1 when the test moved it on: %s", id, harness.GetJob(t, conn, id))
				}
				// The agent's outcome is due 3 s after the start; then a
				// control job, written back after the stale one.
				time.Sleep(3500 * time.Millisecond)
				ctl := harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.noop", Args: `{}`, Queue: "q"})[0]
				harness.WaitState(t, conn, ctl, "completed", 10*time.Second)
				j := harness.GetJob(t, conn, id)
				if j.State != tc.wantState || j.Attempt != tc.wantAttempt || len(j.Errors) != 1 {
					t.Errorf("the late write-back changed the moved-on row: %s", j)
				}
				a.stop(t, 20*time.Second)
				evs := a.events(t)
				if got := eventsFor(evs, id); len(got) != 0 {
					t.Errorf("events for a job whose write-back did not apply: %+v", got)
				}
				if got := eventsFor(evs, ctl); len(got) != 1 || got[0].Event != "job_completed" {
					t.Errorf("control job %d: events %+v, want one job_completed", ctl, got)
				}
				if !strings.Contains(a.Stderr(), "write-backs did not apply") {
					t.Errorf("the agent did not log the write-back that did not apply")
				}
			})
		}
	}
}

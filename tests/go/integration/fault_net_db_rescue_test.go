package integration

// TestFaultNetPartitionDatabaseRescue (issue 5): the cut agent's late
// write-back of jobs that the leader rescued meanwhile (and another agent
// worked again) must change nothing and emit nothing -- before the fix it
// published job_completed for the other agent's attempt and the
// coordinator counted those jobs twice. Needs root (network namespaces);
// uses runPartitionDatabase of fault_net_test.go.

import (
	"testing"
)

// TestFaultNetPartitionDatabaseRescue: runPartitionDatabase with a short
// rescue window and job timeout (as in TestCoordinatorAgentKill9): the jobs
// the cut agent held are rescued by the leader during the cut and worked
// again elsewhere; the cut agent's write-back after the heal must change
// nothing and count nothing.
func TestFaultNetPartitionDatabaseRescue(t *testing.T) {
	t.Parallel()
	rescue := "maintenance:\n  rescuer_interval: 500ms\n  rescue_stuck_jobs_after: 3s\n  scheduler_interval: 500ms\n"
	r := runPartitionDatabase(t, rescue, "    job_timeout: 2s\n")
	if r.held > 0 && r.rescued == 0 {
		t.Errorf("none of the %d jobs held by the cut agent was rescued in a 20 s cut with a 3 s rescue window", r.held)
	}
}

package integration

import (
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"tributary/tests/harness"
)

var statsRE = regexp.MustCompile(`AGT-STATS: client \S+ queue q: .*fetches (\d+) \(jobs (\d+)\)`)

// Under a steady trickle of notified jobs the fetch cooldown grows, so
// fetches batch several jobs; with a fixed cooldown the agent fetches once
// per notification. The agent's final AGT-STATS line (logged when it stops)
// counts its fetches.
func TestAgentCooldownAdapts(t *testing.T) {
	t.Parallel()
	const n = 300
	fetches := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, tc := range []struct{ name, max string }{
		{"fixed", "1ms"},
		{"adaptive", "40ms"},
	} {
		tc := tc
		wg.Add(1)
		t.Run(tc.name, func(t *testing.T) {
			defer wg.Done()
			t.Parallel()
			dbURL := harness.NewRiverDB(t)
			conn := harness.Connect(t, dbURL)
			a := startAgent(t, dbURL, "", "--queue", "q:50", "--mode", "notify",
				"--poll-interval", "10s", "--fetch-cooldown", "1ms",
				"--fetch-cooldown-max", tc.max, "--stats-interval", "1h",
				"--log-level", "debug")
			a.waitReady(t, "q", true)
			for i := 0; i < n; i++ { // one job per transaction, ~5 ms apart
				harness.InsertJobs(t, conn, harness.JobSpec{Kind: "tributary.noop", Queue: "q"})
				time.Sleep(5 * time.Millisecond)
			}
			harness.Eventually(t, 30*time.Second, "all jobs completed", func() bool {
				return harness.QueryInt(t, conn,
					"SELECT count(*) FROM river_job WHERE state = 'completed'") == n
			})
			a.stop(t, 20*time.Second)
			var got, jobs int
			for _, l := range a.StderrLines() {
				if m := statsRE.FindStringSubmatch(l); m != nil {
					got, _ = strconv.Atoi(m[1])
					jobs, _ = strconv.Atoi(m[2])
				}
			}
			if jobs != n {
				t.Fatalf("final AGT-STATS line: %d jobs fetched, want %d", jobs, n)
			}
			t.Logf("%s cooldown: %d fetches for %d jobs", tc.name, got, n)
			mu.Lock()
			fetches[tc.name] = got
			mu.Unlock()
		})
	}
	t.Cleanup(func() {
		wg.Wait()
		fixed, adaptive := fetches["fixed"], fetches["adaptive"]
		if fixed == 0 || adaptive == 0 {
			return // a subtest failed already
		}
		// Fixed: about one fetch per notification. Adaptive (up to 40 ms):
		// several jobs per fetch.
		if fixed < n/2 {
			t.Errorf("fixed 1 ms cooldown: only %d fetches for %d notified jobs", fixed, n)
		}
		if adaptive*2 > fixed {
			t.Errorf("adaptive cooldown: %d fetches, not fewer than half of the fixed cooldown's %d", adaptive, fixed)
		}
	})
}

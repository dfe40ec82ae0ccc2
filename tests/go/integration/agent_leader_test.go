package integration

// Leader election (river_leader, river-facts §5): among agents, and between
// an agent and River's own Go client in the same database. "Never two
// leaders" is checked three ways: the table (sampled), each process's own
// view (its log of gaining and losing leadership), and both combined.

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// leaderSample is one read of river_leader; At is taken before the query,
// so the row held at some instant at or after At.
type leaderSample struct {
	At      time.Time
	Leaders []string // unexpired rows' leader_id (at most one: name is the PK)
	Rows    int
}

// leaderSampler reads river_leader every 'every' until stopped.
type leaderSampler struct {
	mu      sync.Mutex
	samples []leaderSample
	stop    chan struct{}
	done    chan struct{}
}

func sampleLeaders(t *testing.T, dbURL string, every time.Duration) *leaderSampler {
	t.Helper()
	c := harness.Connect(t, dbURL)
	s := &leaderSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			at := time.Now()
			rows, err := c.Query(context.Background(), `SELECT leader_id, expires_at > now() FROM river_leader`)
			if err == nil {
				smp := leaderSample{At: at}
				for rows.Next() {
					var id string
					var live bool
					if rows.Scan(&id, &live) == nil {
						smp.Rows++
						if live {
							smp.Leaders = append(smp.Leaders, id)
						}
					}
				}
				rows.Close()
				s.mu.Lock()
				s.samples = append(s.samples, smp)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	t.Cleanup(s.finish)
	return s
}

func (s *leaderSampler) finish() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *leaderSampler) all() []leaderSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]leaderSample(nil), s.samples...)
}

// current is the latest sample's leader ("" = none).
func (s *leaderSampler) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 || len(s.samples[len(s.samples)-1].Leaders) == 0 {
		return ""
	}
	return s.samples[len(s.samples)-1].Leaders[0]
}

// waitLeader waits until the table names a leader for which ok holds.
func (s *leaderSampler) waitLeader(t *testing.T, timeout time.Duration, what string, ok func(string) bool) string {
	t.Helper()
	var got string
	harness.Eventually(t, timeout, what, func() bool {
		got = s.current()
		return got != "" && ok(got)
	})
	return got
}

// checkTable asserts every sample shows at most one row, naming one of ids.
func checkTable(t *testing.T, samples []leaderSample, ids ...string) {
	t.Helper()
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	for _, s := range samples {
		if s.Rows > 1 || len(s.Leaders) > 1 {
			t.Errorf("river_leader at %s: %d rows %v", s.At.Format(time.RFC3339Nano), s.Rows, s.Leaders)
		}
		for _, l := range s.Leaders {
			if !known[l] {
				t.Errorf("river_leader at %s names %q, not one of %v", s.At.Format(time.RFC3339Nano), l, ids)
			}
		}
	}
}

// span is one stretch of leadership in a process's own view.
type span struct {
	Who        string
	Start, End time.Time
}

// agentLeaderSpans reads an agent's own view of its leadership from its log
// ("<id> is now the leader" .. "<id> is no longer the leader"). A span still
// open ends at 'end' (the kill time, or now).
func agentLeaderSpans(t *testing.T, a *agent, end time.Time) []span {
	t.Helper()
	var out []span
	var cur *span
	for _, l := range a.StderrLines() {
		if !strings.Contains(l, "AGT-LEADER:") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.SplitN(l, " ", 2)[0])
		if err != nil {
			t.Fatalf("agent log line without a time: %q", l)
		}
		switch {
		case strings.Contains(l, a.ID+" is now the leader"):
			if cur != nil {
				t.Errorf("%s: gained leadership twice without losing it: %q", a.ID, l)
			}
			cur = &span{Who: a.ID, Start: at}
		case strings.Contains(l, a.ID+" is no longer the leader"):
			if cur == nil {
				t.Errorf("%s: lost leadership it did not have: %q", a.ID, l)
				continue
			}
			cur.End = at
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.End = end
		out = append(out, *cur)
	}
	return out
}

// goLeaderSpans reads River's own elector log (riverworker --log-level
// debug, slog text): "Gained leadership" starts a span; the elector going
// back to bidding ("Attempting to gain leadership"), stepping down, or
// resigning ("Attempting to resign leadership") ends it.
func goLeaderSpans(t *testing.T, p *harness.Proc, who string, end time.Time) []span {
	t.Helper()
	var out []span
	var cur *span
	for _, l := range p.StderrLines() {
		if !strings.Contains(l, "msg=") || !strings.Contains(l, "time=") {
			continue
		}
		f := strings.Fields(l)
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(l, "Gained leadership"):
			cur = &span{Who: who, Start: at}
		case cur != nil && (strings.Contains(l, "Attempting to gain leadership") ||
			strings.Contains(l, "stepping down") || strings.Contains(l, "Attempting to resign leadership")):
			cur.End = at
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.End = end
		out = append(out, *cur)
	}
	return out
}

// checkSpans asserts that no two processes' own views overlap, and that no
// process believed it led while the table named another one.
func checkSpans(t *testing.T, spans []span, samples []leaderSample) {
	t.Helper()
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.Who != b.Who && a.Start.Before(b.End) && b.Start.Before(a.End) {
				t.Errorf("two leaders at once: %s %s..%s and %s %s..%s", a.Who, a.Start.Format("15:04:05.000"),
					a.End.Format("15:04:05.000"), b.Who, b.Start.Format("15:04:05.000"), b.End.Format("15:04:05.000"))
			}
		}
	}
	for _, s := range samples {
		for _, l := range s.Leaders {
			for _, sp := range spans {
				if sp.Who != l && !s.At.Before(sp.Start) && s.At.Before(sp.End) {
					t.Errorf("at %s river_leader names %s while %s believes it leads (%s..%s)", s.At.Format("15:04:05.000"),
						l, sp.Who, sp.Start.Format("15:04:05.000"), sp.End.Format("15:04:05.000"))
				}
			}
		}
	}
}

// TestAgentLeaderThreeAgents: three agents with a short election interval
// elect exactly one leader; kill -9 of the leader hands leadership to
// another within the TTL and a few intervals; SIGTERM of a leader resigns
// (row deleted) and another takes over through the river_leadership
// notification.
func TestAgentLeaderThreeAgents(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	ids := []string{"la", "lb", "lc"}
	agents := map[string]*agent{}
	for _, id := range ids {
		agents[id] = startAgent(t, dbURL, id, "--queue", "q:1", "--leader-elect-interval", "500ms", "--leader-ttl", "3s")
	}
	smp := sampleLeaders(t, dbURL, 25*time.Millisecond)
	isAgent := func(id string) bool { return agents[id] != nil }

	l1 := smp.waitLeader(t, 5*time.Second, "a first leader", isAgent)
	t.Logf("leader: %s", l1)
	time.Sleep(2 * time.Second)
	if cur := smp.current(); cur != l1 {
		t.Fatalf("leadership moved from %s to %q without a reason", l1, cur)
	}

	// kill -9: the row expires (ttl 3 s), then a follower's bid (every
	// 0.5-1.5 s) wins.
	killed := time.Now()
	agents[l1].Kill()
	l2 := smp.waitLeader(t, 8*time.Second, "a new leader after kill -9", func(id string) bool { return id != l1 })
	took := time.Since(killed)
	t.Logf("after kill -9 of %s: %s leads after %s", l1, l2, took)
	if took > 3*time.Second+3*500*time.Millisecond+time.Second+500*time.Millisecond {
		t.Errorf("takeover after kill -9 took %s, want <= ttl + a few intervals", took)
	}
	time.Sleep(time.Second)

	// SIGTERM: resign = row deleted at once, river_leadership notified,
	// the last agent bids within 0-50 ms.
	termed := time.Now()
	agents[l2].Signal(syscall.SIGTERM)
	harness.Eventually(t, time.Second, "the leader's row gone after SIGTERM", func() bool { return smp.current() != l2 })
	l3 := smp.waitLeader(t, 3*time.Second, "the last agent leading", func(id string) bool { return id != l1 && id != l2 })
	took = time.Since(termed)
	t.Logf("after SIGTERM of %s: %s leads after %s", l2, l3, took)
	if took > time.Second {
		t.Errorf("takeover after a resignation took %s, want < 1s (notification)", took)
	}
	harness.ExpectCleanExit(t, agents[l2].Proc, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	agents[l3].stop(t, 20*time.Second)
	harness.Eventually(t, time.Second, "no leader after the last one stopped", func() bool { return smp.current() == "" })
	smp.finish()

	samples := smp.all()
	checkTable(t, samples, ids...)
	var spans []span
	for _, id := range ids {
		end := time.Now()
		if id == l1 {
			end = killed
		}
		s := agentLeaderSpans(t, agents[id], end)
		t.Logf("%s led: %+v", id, s)
		spans = append(spans, s...)
	}
	checkSpans(t, spans, samples)
	if len(spans) < 3 {
		t.Errorf("%d leadership spans, want at least 3 (one per hand-over)", len(spans))
	}
}

// TestAgentLeaderResignDefaultTimings: with River's default timings (5 s
// interval, 15 s TTL) a resignation still hands over in well under the 5 s
// bid interval: followers bid when river_leadership says "resigned".
func TestAgentLeaderResignDefaultTimings(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	agents := map[string]*agent{
		"ra": startAgent(t, dbURL, "ra", "--queue", "q:1"),
		"rb": startAgent(t, dbURL, "rb", "--queue", "q:1"),
	}
	smp := sampleLeaders(t, dbURL, 20*time.Millisecond)
	l1 := smp.waitLeader(t, 8*time.Second, "a leader", func(id string) bool { return agents[id] != nil })
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	agents[l1].Signal(syscall.SIGTERM)
	l2 := smp.waitLeader(t, 10*time.Second, "the other agent leading", func(id string) bool { return id != l1 })
	took := time.Since(t0)
	t.Logf("%s resigned; %s leads after %s", l1, l2, took)
	if took > time.Second {
		t.Errorf("hand-over took %s, want < 1s", took)
	}
	harness.ExpectCleanExit(t, agents[l1].Proc, 20*time.Second)
	agents[l2].stop(t, 20*time.Second)
	smp.finish()
	checkTable(t, smp.all(), "ra", "rb")
}

type goStatus struct {
	T        string `json:"t"`
	IsLeader bool   `json:"is_leader"`
	LeaderID string `json:"leader_id"`
	Final    bool   `json:"final"`
}

// participant is one process of TestAgentLeaderGoAndC.
type participant struct {
	id     string
	goProc *harness.Proc // River's Go client (riverworker), or
	agent  *agent        // tributary-agent
	end    time.Time     // when it was killed or stopped
}

func (p *participant) proc() *harness.Proc {
	if p.goProc != nil {
		return p.goProc
	}
	return p.agent.Proc
}

func (p *participant) spans(t *testing.T) []span {
	end := p.end
	if end.IsZero() {
		end = time.Now()
	}
	if p.goProc != nil {
		return goLeaderSpans(t, p.goProc, p.id, end)
	}
	return agentLeaderSpans(t, p.agent, end)
}

// TestAgentLeaderGoAndC: River's Go client (riverworker) and an agent share
// a database with River's default election timings (5 s, TTL 15 s). Whoever
// leads is killed with SIGKILL and a fresh process of the same kind joins;
// then the new leader is killed too, so leadership passes both ways (Go to
// C and C to Go, in the order the election decides). For the whole ~45 s
// there is never more than one leader: in the table, in each process's own
// view (River's elector log; the agent's log), in the Go processes' status
// lines, and across all of them.
func TestAgentLeaderGoAndC(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	smp := sampleLeaders(t, dbURL, 100*time.Millisecond)
	var all []*participant
	byID := map[string]*participant{}
	startGo := func(id string) *participant {
		p := &participant{id: id, goProc: harness.Start(t, harness.Bin(t, "riverworker"), []string{"--database-url", dbURL,
			"--id", id, "--queue", "q:5", "--status-interval", "100ms", "--log-level", "debug"}, nil)}
		all = append(all, p)
		byID[id] = p
		return p
	}
	startC := func(id string) *participant {
		p := &participant{id: id, agent: startAgent(t, dbURL, id, "--queue", "q:5")}
		all = append(all, p)
		byID[id] = p
		return p
	}
	startGo("go1")
	startC("c1")

	live := func(id string) bool { return byID[id] != nil && byID[id].end.IsZero() }
	leader := smp.waitLeader(t, 10*time.Second, "a leader", live)
	t.Logf("first leader: %s", leader)
	time.Sleep(5 * time.Second)
	for round := 1; round <= 2; round++ {
		if cur := smp.current(); cur != leader {
			t.Fatalf("leadership moved from %s to %q without a reason", leader, cur)
		}
		victim := byID[leader]
		victim.proc().Kill()
		victim.end = time.Now()
		// A fresh process of the same kind joins (it must not win while
		// the dead leader's row is unexpired).
		if victim.goProc != nil {
			startGo(harness.Fmt("go%d", round+1))
		} else {
			startC(harness.Fmt("c%d", round+1))
		}
		leader = smp.waitLeader(t, 25*time.Second, "a new leader after kill -9 of "+victim.id, live)
		t.Logf("round %d: %s leads %s after kill -9 of %s", round, leader, time.Since(victim.end), victim.id)
		if took := time.Since(victim.end); took > 15*time.Second+6*time.Second+2*time.Second {
			t.Errorf("takeover took %s, want <= TTL 15 s + a 5-6 s bid interval", took)
		}
		time.Sleep(3 * time.Second)
	}

	// Stop the survivors cleanly.
	for _, p := range all {
		if !p.end.IsZero() {
			continue
		}
		p.proc().Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, p.proc(), 30*time.Second)
		p.end = time.Now()
	}
	smp.finish()

	samples := smp.all()
	var ids []string
	var spans []span
	kinds := map[string]bool{}
	for _, p := range all {
		ids = append(ids, p.id)
		sp := p.spans(t)
		t.Logf("%s led (own view): %+v", p.id, sp)
		spans = append(spans, sp...)
		if len(sp) > 0 {
			kinds[p.id[:1]] = true
		}
	}
	checkTable(t, samples, ids...)
	checkSpans(t, spans, samples)
	if !kinds["g"] || !kinds["c"] {
		t.Errorf("leadership did not pass between Go and C (leaders' kinds %v)", kinds)
	}

	// The Go processes' status lines: when one reports leading, no agent
	// may believe it leads.
	for _, p := range all {
		if p.goProc == nil {
			continue
		}
		n := 0
		for _, l := range p.goProc.Lines() {
			var s goStatus
			if json.Unmarshal([]byte(l), &s) != nil || !s.IsLeader {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, s.T)
			if err != nil {
				continue
			}
			n++
			for _, sp := range spans {
				if sp.Who != p.id && at.After(sp.Start) && at.Before(sp.End) {
					t.Errorf("%s reported is_leader at %s while %s led %s..%s", p.id, s.T, sp.Who, sp.Start, sp.End)
				}
			}
		}
		t.Logf("%s printed %d is_leader status lines", p.id, n)
	}
}

// TestAgentLeaderPartition: the leader loses the database (a network
// partition: its packets go nowhere, its connections hang) while another
// agent still reaches it. River's rule: a leader that cannot renew steps
// down on its own by its last renewal attempt's start + TTL - 1 s, before
// the row can expire and anyone else be elected; so the two agents' own
// views of leadership never overlap, partition or not.
func TestAgentLeaderPartition(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	proxy, viaProxy := harness.StartProxy(t, dbURL)
	smp := sampleLeaders(t, dbURL, 25*time.Millisecond)
	pa := startAgent(t, viaProxy, "pa", append([]string{"--queue", "q:1"}, fastLeader...)...)
	smp.waitLeader(t, 5*time.Second, "pa leading", func(id string) bool { return id == "pa" })
	pb := startAgent(t, dbURL, "pb", append([]string{"--queue", "q:1"}, fastLeader...)...)
	time.Sleep(1500 * time.Millisecond)

	proxy.Block()
	blocked := time.Now()
	smp.waitLeader(t, 8*time.Second, "pb leading during the partition", func(id string) bool { return id == "pb" })
	t.Logf("pb leads %s after the partition began", time.Since(blocked))
	harness.WaitForStderrLine(t, pa.Proc, "pa is no longer the leader", 10*time.Second)
	time.Sleep(2 * time.Second)
	proxy.Unblock()
	healed := time.Now()
	time.Sleep(3 * time.Second)
	if cur := smp.current(); cur != "pb" {
		t.Errorf("after the partition healed the leader is %q, want pb", cur)
	}
	pa.stop(t, 30*time.Second)
	pb.stop(t, 30*time.Second)
	smp.finish()

	samples := smp.all()
	checkTable(t, samples, "pa", "pb")
	aSpans := agentLeaderSpans(t, pa, time.Now())
	bSpans := agentLeaderSpans(t, pb, time.Now())
	t.Logf("pa led: %+v", aSpans)
	t.Logf("pb led: %+v", bSpans)
	checkSpans(t, append(aSpans, bSpans...), samples)
	for _, s := range aSpans {
		if s.Start.Before(blocked) && s.End.After(blocked.Add(3*time.Second)) {
			t.Errorf("pa kept believing it led %s into the partition (ttl 3 s: it must step down within ttl - 1 s of its last renewal)", s.End.Sub(blocked))
		}
		if s.Start.After(blocked) && s.Start.Before(healed) {
			t.Errorf("pa gained leadership during the partition: %+v", s)
		}
	}
}

// TestAgentLeaderRequestResign: River's request_resign notification
// (Client.Notify().RequestResign) makes the leading agent resign; the other
// agent, told by the "resigned" notification, takes over at once.
func TestAgentLeaderRequestResign(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	agents := map[string]*agent{
		"qa": startAgent(t, dbURL, "qa", "--queue", "q:1"),
		"qb": startAgent(t, dbURL, "qb", "--queue", "q:1"),
	}
	smp := sampleLeaders(t, dbURL, 20*time.Millisecond)
	l1 := smp.waitLeader(t, 8*time.Second, "a leader", func(id string) bool { return agents[id] != nil })
	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	if _, err := conn.Exec(context.Background(), `SELECT pg_notify(current_schema() || '.river_leadership',
		'{"action":"request_resign","leader_id":""}')`); err != nil {
		t.Fatal(err)
	}
	l2 := smp.waitLeader(t, 3*time.Second, "the other agent leading", func(id string) bool { return id != l1 })
	t.Logf("%s resigned on request; %s leads after %s", l1, l2, time.Since(t0))
	harness.WaitForStderrLine(t, agents[l1].Proc, "resigning on request", time.Second)
	for _, a := range agents {
		a.stop(t, 20*time.Second)
	}
	smp.finish()
	checkTable(t, smp.all(), "qa", "qb")
	var spans []span
	for _, a := range agents {
		spans = append(spans, agentLeaderSpans(t, a, time.Now())...)
	}
	checkSpans(t, spans, smp.all())
}

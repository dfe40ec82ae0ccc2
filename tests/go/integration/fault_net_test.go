package integration

// Network faults between real hosts: every agent runs in a network
// namespace of its own with its own address, joined by a veth pair to a
// hub namespace (a bridge) that holds a private PostgreSQL and the
// coordinator (harness/netns.go). Faults are made with iptables inside the
// agents' namespaces (partitions, random loss) and with a userspace relay
// that delays every byte (cmd/delayrelay; this machine has no netem). Each
// test ends with the nothing-lost comparison of the coordinator's view
// against river_job. They need root (ip netns, iptables in the namespaces;
// CI runs as root) and fail without it. Each test logs its figures (cut
// and catch-up times, outbox growth, throughput, event lag) and how long it
// took; the four run in parallel in about two minutes on 2 vCPUs.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tributary/tests/harness"
)

// netCluster is one test's network: PostgreSQL and the coordinator in the
// hub, agents in namespaces of their own.
type netCluster struct {
	t      *testing.T
	net    *harness.Net
	pg     *harness.NetPG
	conn   *pgx.Conn // through PostgreSQL's Unix socket
	coord  *harness.Coordinator
	secret string
	agents []*netAgent
}

type netAgent struct {
	node   string
	ns     *harness.NS
	proc   *harness.Proc
	outbox string
}

func newNetCluster(t *testing.T) *netCluster {
	t.Helper()
	t0 := time.Now()
	defer func() { t.Logf("network, PostgreSQL and coordinator up in %s", time.Since(t0).Round(time.Millisecond)) }()
	n := harness.NewNet(t)
	pg := harness.StartPGIn(t, n.Hub)
	harness.MigrateRiver(t, pg.SocketURL)
	c := &netCluster{t: t, net: n, pg: pg, conn: harness.Connect(t, pg.SocketURL), secret: newSecret(t)}
	c.coord = harness.StartCoordinatorIn(t, n.Hub, []string{"TRIBUTARY_SECRET=" + c.secret},
		"--data-dir", t.TempDir(), "--database-url", pg.URL, "--poll-interval", "500ms")
	return c
}

// addAgent starts an agent in a new namespace, with one notify and one poll
// client (like clusterAgent) on the queues (comma-separated; 50 workers
// each), forwarding to coordURL (the coordinator itself when "").
func (c *netCluster) addAgent(node, queues, coordURL, extraYAML string, clientYAML ...string) *netAgent {
	t := c.t
	t.Helper()
	if coordURL == "" {
		coordURL = c.coord.Listen
	}
	a := &netAgent{node: node, ns: c.net.AddHost(node), outbox: filepath.Join(t.TempDir(), "outbox-"+node)}
	cfg := writeConfig(t, node, agentYAML(node, queues, extraYAML, clientYAML...))
	a.proc = a.ns.Start(t, harness.Bin(t, "tributary-agent"), []string{
		"--database-url", c.pg.URL, "--config", cfg, "--node-id", node,
		"--coordinator", coordURL, "--outbox-dir", a.outbox, "--stats-interval", "1s",
	}, []string{"TRIBUTARY_SECRET=" + c.secret})
	p := a.proc
	t.Cleanup(func() {
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("agent %s: sanitizer report: %s", node, r)
		}
		if t.Failed() { // its log without the once-a-second AGT-STATS lines
			var keep []string
			for _, l := range p.StderrLines() {
				if !strings.Contains(l, "AGT-STATS") {
					keep = append(keep, l)
				}
			}
			if len(keep) > 60 {
				keep = keep[len(keep)-60:]
			}
			t.Logf("--- agent %s log without AGT-STATS (last 60 lines) ---\n%s", node, strings.Join(keep, "\n"))
		}
	})
	c.agents = append(c.agents, a)
	return a
}

// insertMix inserts n jobs into queue: 90 % tributary.sleep of sleepMS, 5 %
// failing for good (max_attempts 1: discarded), 5 % failing half the time
// with one retry. One transaction per kind, with the insert notification.
func insertMix(t *testing.T, c *pgx.Conn, n int, queue string, sleepMS int) {
	t.Helper()
	f := n / 20
	insertJobs(t, c, n-2*f, "tributary.sleep", fmt.Sprintf(`{"ms": %d}`, sleepMS), queue, 25)
	if f > 0 {
		insertJobs(t, c, f, "tributary.fail", `{"message": "card 4242 declined"}`, queue, 1)
		insertJobs(t, c, f, "tributary.fail", `{"probability": 0.5, "message": "upstream returned 503"}`, queue, 2)
	}
}

func dbFinished(t *testing.T, c *pgx.Conn) int64 {
	t.Helper()
	return harness.QueryInt(t, c, `SELECT count(*) FROM river_job WHERE state IN ('completed', 'discarded', 'cancelled')`)
}

func dbNow(t *testing.T, c *pgx.Conn) time.Time {
	t.Helper()
	var now time.Time
	if err := c.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// finishedBy counts the jobs whose last attempt was by the node's clients
// and that were finalized in [from, to).
func finishedBy(t *testing.T, c *pgx.Conn, node string, from, to time.Time) int64 {
	t.Helper()
	return harness.QueryInt(t, c, `SELECT count(*) FROM river_job
		WHERE finalized_at >= $1 AND finalized_at < $2 AND attempted_by[cardinality(attempted_by)] LIKE $3`,
		from, to, node+"-%")
}

// dirBytes is the size of the regular files in dir (the outbox's segments).
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

var outboxStatsRE = regexp.MustCompile(`AGT-STATS: outbox: ([0-9]+) event\(s\) not yet durable \(([0-9]+) bytes`)

// outboxEvents is the agent's last AGT-STATS figure of events not yet
// durable (-1 before its first line).
func (a *netAgent) outboxEvents() int64 {
	lines := a.proc.StderrLines()
	for i := len(lines) - 1; i >= 0; i-- {
		if m := outboxStatsRE.FindStringSubmatch(lines[i]); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
	}
	return -1
}

// liveness maps node -> liveness from `tributary nodes`.
func (c *netCluster) liveness() map[string]string {
	out := map[string]string{}
	for _, n := range harness.List(c.coord.Query(c.t, "nodes"), "nodes") {
		node, _ := n["node"].(string)
		l, _ := n["liveness"].(string)
		out[node] = l
	}
	return out
}

// finish waits for every job to be final in river_job, runs the
// nothing-lost comparison, waits for the outboxes to drain and stops the
// agents and the coordinator cleanly (exit 0, no sanitizer report).
// It returns the coordinator's status and how long after the last job
// finished in river_job the coordinator had counted it.
func (c *netCluster) finish(total int64, timeout time.Duration) (map[string]any, time.Duration) {
	t := c.t
	t.Helper()
	harness.Eventually(t, timeout, fmt.Sprintf("all %d jobs final in river_job", total), func() bool {
		return dbFinished(t, c.conn) == total
	})
	dbDone := time.Now()
	harness.Eventually(t, 120*time.Second, "the coordinator counting every finished job", func() bool {
		return harness.Num(c.coord.Query(t, "status"), "totals", "finished") >= total
	})
	catchUp := time.Since(dbDone)
	c.explainDifference(total, 60*time.Second)
	status := checkNothingLost(t, c.coord, c.conn, total)
	harness.Eventually(t, 60*time.Second, "outboxes drained and every node alive", func() bool {
		nodes := harness.List(c.coord.Query(t, "nodes"), "nodes")
		if len(nodes) != len(c.agents) {
			return false
		}
		for _, n := range nodes {
			s, _ := n["sample"].(map[string]any)
			if n["liveness"] != "alive" || s == nil || harness.Num(s, "outbox_events") != 0 {
				return false
			}
		}
		return true
	})
	stopping := time.Now()
	var wg sync.WaitGroup
	for _, a := range c.agents {
		a.proc.Signal(syscall.SIGTERM)
	}
	for _, a := range c.agents {
		wg.Add(1)
		go func(a *netAgent) {
			defer wg.Done()
			harness.ExpectCleanExit(t, a.proc, 60*time.Second)
		}(a)
	}
	wg.Wait()
	c.coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, c.coord.Proc, 30*time.Second)
	t.Logf("finish: river_job final, compared and drained in %s, agents and coordinator stopped in %s",
		stopping.Sub(dbDone).Round(time.Millisecond), time.Since(stopping).Round(time.Millisecond))
	return status, catchUp
}

// explainDifference waits up to timeout for the coordinator's finished
// counts to equal river_job's and, if they do not, logs both per (queue,
// kind, state) with the events applied and implied before checkNothingLost
// fails, so that a failure says what differs.
func (c *netCluster) explainDifference(total int64, timeout time.Duration) {
	t := c.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		status := c.coord.Query(t, "status")
		db, ev := dbFinal(t, c.conn), eventFinal(status)
		if harness.Num(status, "totals", "finished") == total && sameCounts(db, ev) {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("after %s: coordinator finished %d, river_job %d; per (queue, kind, state): database %v, events %v; applied %d, duplicates %d",
				timeout, harness.Num(status, "totals", "finished"), total, db, ev,
				harness.Num(status, "coordinator", "events_applied"), harness.Num(status, "coordinator", "duplicates"))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func latencyLine(status map[string]any) string {
	p := func(k string) string {
		return fmt.Sprintf("%s p50 %d ms p99 %d ms", k,
			harness.Num(status, "totals", "latency_ms", k, "p50"), harness.Num(status, "totals", "latency_ms", k, "p99"))
	}
	return p("end_to_end") + "; " + p("complete")
}

// TestFaultNetPartitionCoordinator: three agents lose the coordinator (every
// packet between their namespaces and its address dropped, both ways; the
// database stays reachable) for 30 s while jobs keep coming. The agents keep
// working (river_job finishes jobs of every node during the cut), their
// outboxes grow, the coordinator counts nothing meanwhile and marks the
// nodes missing; after the heal every node is alive again, the outboxes
// drain and nothing is lost or counted twice.
func TestFaultNetPartitionCoordinator(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	c := newNetCluster(t)
	for i := 1; i <= 3; i++ {
		c.addAgent(fmt.Sprintf("pc%d", i), "pq", "", "")
	}
	feed := harness.Connect(t, c.pg.SocketURL)
	const perSec, seconds = 100, 45
	const cutAt, healAt = 6, 36 // seconds after the first insert
	harness.Eventually(t, 30*time.Second, "three nodes alive", func() bool {
		l := c.liveness()
		return len(l) == 3 && l["pc1"] == "alive" && l["pc2"] == "alive" && l["pc3"] == "alive"
	})

	var rules []*harness.Rule
	var cutDB, healDB time.Time
	var coordAtCut, coordAfterCut, coordAtHeal, dbAtCut, dbAtHeal int64
	afterCutTaken := false
	outboxAtCut := map[string]int64{}
	outboxMax := map[string]int64{}
	bytesAtCut := map[string]int64{}
	bytesMax := map[string]int64{}
	firstSeen := map[string]map[string]time.Duration{} // node -> liveness -> since cut
	start := time.Now()
	for i := 0; i < seconds; i++ {
		insertMix(t, feed, perSec, "pq", 20)
		el := time.Since(start)
		switch {
		case rules == nil && el >= cutAt*time.Second:
			cutDB = dbNow(t, c.conn)
			coordAtCut = harness.Num(c.coord.Query(t, "status"), "totals", "finished")
			dbAtCut = dbFinished(t, c.conn)
			for _, a := range c.agents {
				rules = append(rules, a.ns.Partition(t, c.net.Hub.IP, harness.CoordPort))
				outboxAtCut[a.node] = a.outboxEvents()
				bytesAtCut[a.node] = dirBytes(a.outbox)
			}
			t.Logf("partition from the coordinator at %s: river_job %d finished, coordinator %d", el.Round(time.Millisecond), dbAtCut, coordAtCut)
		case rules != nil && healDB.IsZero() && el >= healAt*time.Second:
			coordAtHeal = harness.Num(c.coord.Query(t, "status"), "totals", "finished")
			healDB = dbNow(t, c.conn)
			dbAtHeal = dbFinished(t, c.conn)
			for _, r := range rules {
				r.Remove(t)
			}
			t.Logf("healed at %s: river_job %d finished, coordinator %d", el.Round(time.Millisecond), dbAtHeal, coordAtHeal)
		case !cutDB.IsZero() && healDB.IsZero():
			since := time.Since(start) - cutAt*time.Second
			if !afterCutTaken && since >= 5*time.Second {
				coordAfterCut = harness.Num(c.coord.Query(t, "status"), "totals", "finished")
				afterCutTaken = true
			}
			for node, l := range c.liveness() {
				if firstSeen[node] == nil {
					firstSeen[node] = map[string]time.Duration{}
				}
				if _, ok := firstSeen[node][l]; !ok {
					firstSeen[node][l] = since.Round(100 * time.Millisecond)
				}
			}
			for _, a := range c.agents {
				outboxMax[a.node] = max(outboxMax[a.node], a.outboxEvents())
				bytesMax[a.node] = max(bytesMax[a.node], dirBytes(a.outbox))
			}
		}
		if d := time.Duration(i+1)*time.Second - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	if healDB.IsZero() {
		t.Fatal("the feed loop ended before the heal")
	}
	total := int64(perSec * seconds)

	// During the cut: every agent finished jobs, the coordinator counted none
	// (after the in-flight ones), the outboxes grew, the nodes went missing.
	for _, a := range c.agents {
		n := finishedBy(t, c.conn, a.node, cutDB, healDB)
		t.Logf("%s during the cut: %d jobs finished; outbox %d -> max %d events not durable, %d -> max %d bytes on disk; liveness seen %v",
			a.node, n, outboxAtCut[a.node], outboxMax[a.node], bytesAtCut[a.node], bytesMax[a.node], firstSeen[a.node])
		if n == 0 {
			t.Errorf("%s finished no job while cut off from the coordinator", a.node)
		}
		if outboxMax[a.node] <= outboxAtCut[a.node] || bytesMax[a.node] <= bytesAtCut[a.node] {
			t.Errorf("%s: outbox did not grow during the cut (events %d -> %d, bytes %d -> %d)",
				a.node, outboxAtCut[a.node], outboxMax[a.node], bytesAtCut[a.node], bytesMax[a.node])
		}
		if _, ok := firstSeen[a.node]["missing"]; !ok {
			t.Errorf("%s never shown missing during a 30 s partition (seen %v)", a.node, firstSeen[a.node])
		}
	}
	if coordAtHeal != coordAfterCut {
		t.Errorf("the coordinator counted %d finished jobs during the partition (from 5 s after the cut): the cut leaks", coordAtHeal-coordAfterCut)
	}
	t.Logf("river_job finished %d jobs during the cut; the coordinator counted %d meanwhile", dbAtHeal-dbAtCut, coordAtHeal-coordAtCut)

	healed := time.Now()
	harness.Eventually(t, 120*time.Second, "every node alive after the heal", func() bool {
		l := c.liveness()
		return l["pc1"] == "alive" && l["pc2"] == "alive" && l["pc3"] == "alive"
	})
	alive := time.Since(healed)
	harness.Eventually(t, 120*time.Second, "the coordinator catching up with river_job's finished jobs at the heal", func() bool {
		return harness.Num(c.coord.Query(t, "status"), "totals", "finished") >= dbAtHeal
	})
	caught := time.Since(healed)
	status, lag := c.finish(total, 180*time.Second)
	t.Logf("after the heal: nodes alive in %s, backlog of the cut counted in %s; last job counted %s after river_job; %s; test took %s",
		alive.Round(time.Millisecond), caught.Round(time.Millisecond), lag.Round(time.Millisecond), latencyLine(status), time.Since(t0).Round(time.Second))
}

// dbPartitionResult: how many sleep jobs the cut agent was running when it
// was cut off, how many of them the leader rescued, and how many ended with the
// cut agent's attempt the last one.
type dbPartitionResult struct{ held, rescued, byCut int64 }

// runPartitionDatabase: one of three agents (pd1, pd2, cut; agentYAML and
// clientYAML as for addAgent) loses PostgreSQL (its packets to and from the
// server dropped, both ways) for 20 s, cut while it runs jobs, while jobs
// keep coming; it can still reach the coordinator. The other two keep
// finishing jobs; the cut agent finishes none in river_job while cut; after
// the heal it reconnects by itself and fetches and finishes new jobs; every
// job ends final and nothing is lost (finish).
func runPartitionDatabase(t *testing.T, agentYAML string, clientYAML ...string) dbPartitionResult {
	t.Helper()
	t0 := time.Now()
	c := newNetCluster(t)
	// Everyone works dq; the agent to be cut also dcut, so that it always
	// runs jobs of its own when it is cut off.
	for _, n := range []string{"pd1", "pd2"} {
		c.addAgent(n, "dq", "", agentYAML, clientYAML...)
	}
	c.addAgent("cut", "dq,dcut", "", agentYAML, clientYAML...)
	cut := c.agents[2]
	feed := harness.Connect(t, c.pg.SocketURL)
	const perSec, seconds = 100, 30
	const cutAt, healAt = 5, 25
	harness.Eventually(t, 30*time.Second, "three nodes alive", func() bool { return len(c.liveness()) == 3 })

	var rule *harness.Rule
	var cutDB, healDB time.Time
	var heldIDs []int64
	// The sleep jobs (the failing ones may be retried elsewhere anyway).
	heldQuery := `SELECT coalesce(array_agg(id), '{}') FROM river_job WHERE kind = 'tributary.sleep'
		AND state = 'running' AND attempted_by[cardinality(attempted_by)] LIKE 'cut-%'`
	start := time.Now()
	for i := 0; i < seconds; i++ {
		insertMix(t, feed, perSec, "dq", 1500)
		insertJobs(t, feed, 20, "tributary.sleep", `{"ms": 1500}`, "dcut", 25)
		el := time.Since(start)
		if rule == nil && el >= cutAt*time.Second {
			// Cut while the agent runs jobs (dcut's 20 a second take 1.5 s).
			harness.Eventually(t, 20*time.Second, "the agent to be cut running jobs", func() bool {
				return harness.QueryInt(t, c.conn, `SELECT count(*) FROM river_job WHERE state = 'running'
					AND attempted_by[cardinality(attempted_by)] LIKE 'cut-%'`) >= 5
			})
			cutDB = dbNow(t, c.conn)
			rule = cut.ns.Partition(t, c.net.Hub.IP, c.pg.Port)
			if err := c.conn.QueryRow(context.Background(), heldQuery).Scan(&heldIDs); err != nil {
				t.Fatal(err)
			}
			t.Logf("agent cut off from PostgreSQL at %s running %d sleep jobs", el.Round(time.Millisecond), len(heldIDs))
		}
		if rule != nil && healDB.IsZero() && el >= healAt*time.Second {
			healDB = dbNow(t, c.conn)
			rule.Remove(t)
			t.Logf("healed at %s", el.Round(time.Millisecond))
		}
		if d := time.Duration(i+1)*time.Second - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	if healDB.IsZero() {
		t.Fatal("the feed loop ended before the heal")
	}
	// The others kept working during the cut.
	for _, a := range c.agents[:2] {
		n := finishedBy(t, c.conn, a.node, cutDB, healDB)
		t.Logf("%s finished %d jobs during the cut", a.node, n)
		if n == 0 {
			t.Errorf("%s finished no job while another agent was cut off from the database", a.node)
		}
	}
	if n := finishedBy(t, c.conn, "cut", cutDB.Add(2*time.Second), healDB.Add(-time.Second)); n != 0 {
		// Sanity of the fault: a write-back cannot reach the server.
		t.Errorf("the cut agent finished %d jobs in river_job from 2 s into its cut", n)
	}
	// The cut agent comes back: a last batch, of which it must finish some.
	healed := time.Now()
	tail := harness.QueryInt(t, c.conn, `SELECT coalesce(max(id), 0) FROM river_job`)
	const tailJobs = 600
	var recovered time.Duration
	for i := 0; recovered == 0; i++ {
		if i == 60 {
			t.Fatalf("the agent cut off from PostgreSQL finished none of %d jobs inserted over 60 s after the heal", i*tailJobs/10)
		}
		insertJobs(t, feed, tailJobs/10, "tributary.sleep", `{"ms": 100}`, "dq", 25)
		time.Sleep(time.Second)
		if harness.QueryInt(t, c.conn, `SELECT count(*) FROM river_job WHERE id > $1 AND state = 'completed'
			AND attempted_by[cardinality(attempted_by)] LIKE 'cut-%'`, tail) > 0 {
			recovered = time.Since(healed)
		}
	}
	t.Logf("the cut agent finished new jobs %s after the heal", recovered.Round(time.Millisecond))
	inserted := harness.QueryInt(t, c.conn, `SELECT count(*) FROM river_job`)
	harness.Eventually(t, 180*time.Second, "all jobs final in river_job", func() bool { return dbFinished(t, c.conn) == inserted })
	// Where the held jobs ended: state, attempt, whose attempt was last.
	rows, err := c.conn.Query(context.Background(), `SELECT state::text, attempt,
		attempted_by[cardinality(attempted_by)] LIKE 'cut-%', count(*)
		FROM river_job WHERE id = ANY($1) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, heldIDs)
	if err != nil {
		t.Fatal(err)
	}
	var ends []string
	for rows.Next() {
		var st string
		var attempt, n int64
		var cutLast bool
		if err := rows.Scan(&st, &attempt, &cutLast, &n); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, fmt.Sprintf("%d %s attempt %d (last attempt the cut agent's: %v)", n, st, attempt, cutLast))
	}
	rows.Close()
	t.Logf("the held jobs ended: %s", strings.Join(ends, "; "))
	status, lag := c.finish(inserted, 180*time.Second)
	// What became of the jobs it held: rescued by the leader and run again,
	// or written back by it after the heal (each is final: finish checked).
	r := dbPartitionResult{held: int64(len(heldIDs))}
	if err := c.conn.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(errors) e WHERE e->>'error' LIKE 'Stuck job rescued by JobRescuer%')),
		count(*) FILTER (WHERE attempted_by[cardinality(attempted_by)] LIKE 'cut-%')
		FROM river_job WHERE id = ANY($1)`, heldIDs).Scan(&r.rescued, &r.byCut); err != nil {
		t.Fatal(err)
	}
	t.Logf("the cut agent held %d running sleep jobs: %d rescued by the leader, %d finished with the cut agent's attempt last; it finished new jobs %s after the heal; last job counted %s after river_job; %s; test took %s",
		r.held, r.rescued, r.byCut, recovered.Round(time.Millisecond), lag.Round(time.Millisecond), latencyLine(status), time.Since(t0).Round(time.Second))
	return r
}

// TestFaultNetPartitionDatabase: runPartitionDatabase with River's default
// rescue window (1 h): the jobs the cut agent held stay running in
// river_job during the cut and are all written back by it after the heal.
func TestFaultNetPartitionDatabase(t *testing.T) {
	t.Parallel()
	r := runPartitionDatabase(t, "")
	if r.rescued != 0 || r.byCut != r.held {
		t.Errorf("of the %d jobs held by the cut agent %d were rescued and %d finished by it, want none rescued and all finished by it",
			r.held, r.rescued, r.byCut)
	}
}

// TestFaultNetLoss: every agent's link loses 20 % of its packets, each
// direction (to PostgreSQL and to the coordinator alike), for the whole run
// after a first burst on healthy links. Nothing is lost; the throughput (a
// burst of no-ops with and without the loss) and how far the coordinator
// trails river_job are logged.
func TestFaultNetLoss(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	c := newNetCluster(t)
	for _, n := range []string{"l1", "l2"} {
		c.addAgent(n, "lq", "", "")
	}
	harness.Eventually(t, 30*time.Second, "two nodes alive", func() bool { return len(c.liveness()) == 2 })
	feed := harness.Connect(t, c.pg.SocketURL)
	// A burst of no-ops on healthy links first, to compare with.
	const burst = 2000
	burstRun := func(want int64) time.Duration {
		t.Helper()
		s := time.Now()
		insertJobs(t, feed, burst, "tributary.noop", `{}`, "lq", 25)
		harness.Eventually(t, 180*time.Second, "the burst final in river_job", func() bool { return dbFinished(t, c.conn) == want })
		return time.Since(s)
	}
	healthy := burstRun(burst)
	var rules []*harness.Rule
	for _, a := range c.agents {
		rules = append(rules, a.ns.Loss(t, 0.20))
	}
	const perSec, seconds = 100, 30
	start := time.Now()
	var maxLag int64
	for i := 0; i < seconds; i++ {
		insertMix(t, feed, perSec, "lq", 10)
		lag := dbFinished(t, c.conn) - harness.Num(c.coord.Query(t, "status"), "totals", "finished")
		maxLag = max(maxLag, lag)
		if d := time.Duration(i+1)*time.Second - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	harness.Eventually(t, 180*time.Second, "the paced jobs final in river_job", func() bool {
		lag := dbFinished(t, c.conn) - harness.Num(c.coord.Query(t, "status"), "totals", "finished")
		maxLag = max(maxLag, lag)
		return dbFinished(t, c.conn) == burst+perSec*seconds
	})
	took := time.Since(start)
	// Then the same burst on the lossy links.
	const total = burst + perSec*seconds + burst
	lossy := burstRun(total)
	var dropped int64
	for i, a := range c.agents {
		d := a.ns.Dropped(t)
		dropped += d
		t.Logf("%s: %d packets dropped", a.node, d)
		rules[i].Remove(t) // the clean stop below runs on a healthy link
	}
	if dropped == 0 {
		t.Fatal("no packet was dropped: the loss rules did not apply")
	}
	status, lag := c.finish(total, 60*time.Second)
	t.Logf("20%% loss each way: %d jobs offered at %d/s finished in %s; a burst of %d no-ops in %s (%.0f jobs/s; %s = %.0f jobs/s before the loss); coordinator trailed river_job by at most %d jobs, last job counted %s after river_job; %s; test took %s",
		perSec*seconds, perSec, took.Round(time.Millisecond), burst, lossy.Round(time.Millisecond), burst/lossy.Seconds(),
		healthy.Round(time.Millisecond), burst/healthy.Seconds(),
		maxLag, lag.Round(time.Millisecond), latencyLine(status), time.Since(t0).Round(time.Second))
}

// TestFaultNetSlowLink: the agents reach the coordinator through a relay
// adding 100 ms to each direction (cmd/delayrelay in the hub: a 200 ms
// round trip; the database path is direct). Nothing is lost; the event lag
// (arrival at `tributary events` minus the job's finalized_at) is logged.
func TestFaultNetSlowLink(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	c := newNetCluster(t)
	relayAddr := fmt.Sprintf("%s:%d", c.net.Hub.IP, harness.CoordPort+1)
	relay := c.net.Hub.Start(t, harness.Bin(t, "delayrelay"), []string{
		"--listen", relayAddr, "--target", fmt.Sprintf("%s:%d", c.net.Hub.IP, harness.CoordPort), "--delay", "100ms",
	}, nil)
	harness.WaitForLine(t, relay, "listening on", 10*time.Second)
	for _, n := range []string{"s1", "s2"} {
		c.addAgent(n, "sq", "tcp://"+relayAddr, "")
	}
	harness.Eventually(t, 30*time.Second, "two nodes alive", func() bool { return len(c.liveness()) == 2 })

	// The cluster-wide event stream, each line stamped when read.
	type stampedLine struct {
		at   time.Time
		line string
	}
	cmd := exec.Command(harness.Bin(t, "tributary"), "events", "--control", c.coord.Control)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var lines []stampedLine
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines = append(lines, stampedLine{time.Now(), sc.Text()})
		}
	}()
	time.Sleep(500 * time.Millisecond) // its first request sets "from now"
	feed := harness.Connect(t, c.pg.SocketURL)
	const perSec, seconds = 100, 30
	start := time.Now()
	for i := 0; i < seconds; i++ {
		insertMix(t, feed, perSec, "sq", 10)
		if d := time.Duration(i+1)*time.Second - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
	const total = perSec * seconds
	harness.Eventually(t, 120*time.Second, "all jobs final in river_job", func() bool { return dbFinished(t, c.conn) == total })
	took := time.Since(start)
	status, lag := c.finish(total, 60*time.Second)
	_ = cmd.Process.Kill()
	<-readDone

	var lags []float64
	var missed int64
	for _, sl := range lines {
		var e struct {
			Missed      *int64  `json:"missed"`
			FinalizedAt *string `json:"finalized_at"`
		}
		if err := json.Unmarshal([]byte(sl.line), &e); err != nil {
			continue
		}
		if e.Missed != nil {
			missed += *e.Missed
			continue
		}
		if e.FinalizedAt == nil {
			continue
		}
		fin, err := time.Parse(time.RFC3339Nano, *e.FinalizedAt)
		if err != nil {
			continue
		}
		lags = append(lags, float64(sl.at.Sub(fin))/float64(time.Millisecond))
	}
	if len(lags) == 0 {
		t.Fatalf("tributary events printed no job event with finalized_at (%d lines)", len(lines))
	}
	sort.Float64s(lags)
	q := func(p float64) float64 { return lags[int(p*float64(len(lags)-1))] }
	opened := strings.Count(relay.Stderr(), " opened")
	if opened < 2 {
		t.Errorf("the relay carried %d connections, want >= 2 (one per agent)", opened)
	}
	t.Logf("100 ms each way: %d jobs in %s; event lag (arrival at tributary events - finalized_at) over %d events: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms (%d missed by the reader); last job counted %s after river_job; %s; test took %s",
		total, took.Round(time.Millisecond), len(lags), q(0.5), q(0.9), q(0.99), lags[len(lags)-1], missed,
		lag.Round(time.Millisecond), latencyLine(status), time.Since(t0).Round(time.Second))
}

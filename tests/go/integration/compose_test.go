package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// TestComposeStack: deploy/docker-compose.yml on the real Docker engine,
// with nothing pulled: the base image from debootstrap
// (deploy/base-image.sh), PostgreSQL from deploy/postgres/Dockerfile and
// Tributary from deploy/Dockerfile, both FROM that base. The stack comes
// up under a unique project name with 3 agents; the shared secret is a
// compose file secret left world-readable on the host (as a careless
// operator would), which the entrypoint must turn into a private copy for
// the unprivileged user. A stress run of 20,000 jobs goes through the
// stress service; mid-run one agent is killed with `docker kill` and
// started again, another crashes (SIGKILL from the host) and is restarted
// by its restart policy, both on their outboxes; the leader rescues the
// jobs they held. The stress run must end with both
// monitors agreeing, and the coordinator's view must equal river_job
// (checkNothingLost). Everything is removed at the end (down -v), pass or
// fail.
func TestComposeStack(t *testing.T) {
	harness.RequireDocker(t)
	t0 := time.Now()
	phase := func(name string, start time.Time) {
		t.Logf("phase %-28s %6.1f s", name, time.Since(start).Seconds())
	}
	src := harness.SrcDir(t)
	deploy := filepath.Join(src, "deploy")

	// Images. Every build is cached by the engine: a second run on the same
	// machine rebuilds only what changed (the Tributary build stage when a
	// source file did).
	start := time.Now()
	base := harness.BaseImage(t)
	phase("base image", start)
	start = time.Now()
	const pgImage = "tributary-postgres:15"
	harness.MustDocker(t, 20*time.Minute, "build", "-q", "--build-arg", "BASE="+base,
		"-t", pgImage, filepath.Join(deploy, "postgres"))
	phase("postgres image", start)

	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(newSecret(t)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	reports := filepath.Join(dir, "reports")
	if err := os.Mkdir(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test's own override: PostgreSQL published on loopback for the
	// comparison with river_job (the deployment does not publish it).
	override := filepath.Join(dir, "test.override.yml")
	if err := os.WriteFile(override, []byte("services:\n  postgres:\n    ports: [\"127.0.0.1::5432\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pgPassword := strings.TrimSpace(newSecret(t))[:24]
	c := harness.NewCompose(t, []string{
		"TRIBUTARY_IMAGE=tributary:compose-test",
		"TRIBUTARY_BASE=" + base,
		"POSTGRES_IMAGE=" + pgImage,
		"POSTGRES_PASSWORD=" + pgPassword,
		"TRIBUTARY_SECRET_PATH=" + secret,
		"TRIBUTARY_REPORTS_DIR=" + reports,
		"TRIBUTARY_LISTEN_PUBLISH=127.0.0.1:",
		"TRIBUTARY_CONTROL_PUBLISH=127.0.0.1:",
		"TRIBUTARY_DB_POLL_INTERVAL=500ms",
		// fast rescue of the jobs a killed agent held (job timeout below the
		// window: River's rule)
		"TRIBUTARY_JOB_TIMEOUT=3s",
		"TRIBUTARY_RESCUE_STUCK_JOBS_AFTER=5s",
		"TRIBUTARY_RESCUER_INTERVAL=1s",
		"TRIBUTARY_SCHEDULER_INTERVAL=1s",
		"TRIBUTARY_QUEUES=default:50",
		"COMPOSE_HTTP_TIMEOUT=300",
	}, filepath.Join(deploy, "docker-compose.yml"), override)
	// Only what the test sets: not a deploy/.env left by someone's own use.
	c.EnvFile = filepath.Join(dir, "empty.env")
	if err := os.WriteFile(c.EnvFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustRun(time.Minute, "config", "-q")

	start = time.Now()
	c.MustRun(25*time.Minute, "build", "migrate")
	phase("tributary image", start)

	start = time.Now()
	c.MustRun(5*time.Minute, "up", "-d", "--scale", "agent=3")
	phase("up (postgres, migrate, coordinator)", start)
	start = time.Now()
	coord := &harness.Coordinator{Control: "tcp://" + c.Port("coordinator", 7101)}
	conn := harness.Connect(t, fmt.Sprintf("postgres://tributary:%s@%s/tributary?sslmode=disable",
		pgPassword, c.Port("postgres", 5432)))

	agents := c.Containers("agent")
	if len(agents) != 3 {
		t.Fatalf("%d agent containers, want 3", len(agents))
	}
	harness.Eventually(t, 90*time.Second, "3 agents alive in the coordinator's view", func() bool {
		alive := 0
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			if n["liveness"] == "alive" {
				alive++
			}
		}
		return alive == 3
	})
	phase("agents alive", start)

	// The secret: a private copy for the user tributary, and the services
	// run as that user.
	for _, svc := range []string{"coordinator", "agent"} {
		out := strings.TrimSpace(c.MustRun(time.Minute, "exec", "-T", svc,
			"sh", "-c", "stat -c '%a %U' /run/tributary/tributary_secret_file; grep '^Uid:' /proc/1/status"))
		fields := strings.Fields(out)
		if len(fields) < 5 || fields[0] != "400" || fields[1] != "tributary" || fields[3] != "10001" {
			t.Errorf("%s: secret copy and uid: %q, want mode 400, owner tributary, uid 10001", svc, out)
		}
	}
	if logs, _ := c.Run(time.Minute, "logs", "--no-color", "coordinator"); strings.Contains(logs, "CRD-NOSECRET") {
		t.Errorf("the coordinator runs without the secret:\n%s", logs)
	}

	// The stress run, in the background.
	const total = 20000
	type result struct {
		out, errs string
		code      int
	}
	stressDone := make(chan result, 1)
	start = time.Now()
	go func() {
		out, errs, code := c.RunSplit(12*time.Minute, "run", "--rm", "-T", "stress", "tributary", "stress",
			"--name", "compose", "--jobs", fmt.Sprint(total), "--rate", "800/s",
			"--kind", "tributary.sleep", "--args", `{"ms": 30}`, "--timeout", "8m")
		stressDone <- result{out, errs, code}
	}()
	// Two agents die mid-run, one way each:
	//  - `docker kill`: Docker 20.10 counts it as a manual stop, so the
	//    restart policy (unless-stopped) leaves the container stopped; we
	//    start it again ourselves. Same container: same host name (node id)
	//    and outbox, which it replays.
	//  - a crash: SIGKILL to the agent's process (the container's PID 1)
	//    from the host, as the OOM killer would; the restart policy must
	//    restart the container by itself.
	// The jobs each held stay `running` until the leader's rescuer makes
	// them retryable (5 s window here).
	// The jobs each victim held: those still `running` under its client
	// once none of its database sessions is left (a write-back it had sent
	// may still commit after the kill; the agent's sessions are named
	// tributary-agent:<client id>).
	var held []int64
	var hosts []string
	kill := func(victim string, atCompleted int64, how string) {
		harness.Eventually(t, 5*time.Minute, fmt.Sprintf("%d jobs completed before the %s", atCompleted, how), func() bool {
			return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) >= atCompleted
		})
		host := harness.Inspect(t, victim, "{{.Config.Hostname}}")
		hosts = append(hosts, host)
		var client string
		if err := conn.QueryRow(context.Background(), `SELECT substr(application_name, 17) FROM pg_stat_activity
			WHERE application_name LIKE 'tributary-agent:' || $1 || '\_%' LIMIT 1`, host).Scan(&client); err != nil {
			t.Fatalf("the database sessions of agent %s: %v", host, err)
		}
		if how == "docker kill" {
			harness.MustDocker(t, time.Minute, "kill", victim)
		} else {
			pid, err := strconv.Atoi(harness.Inspect(t, victim, "{{.State.Pid}}"))
			if err != nil || pid <= 1 {
				t.Fatalf("agent container %s: no process id (%v)", victim, err)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d: %v", pid, err)
			}
		}
		at := time.Since(start)
		harness.Eventually(t, 60*time.Second, "the killed agent's database sessions gone", func() bool {
			return harness.QueryInt(t, conn, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`,
				"tributary-agent:"+client) == 0
		})
		rows, err := conn.Query(context.Background(), `SELECT id FROM river_job WHERE state = 'running'
			AND attempted_by[cardinality(attempted_by)] = $1`, client)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			held = append(held, id)
			n++
		}
		rows.Close()
		t.Logf("%s of agent %s (client %s) at %.1f s into the run: it held %d running jobs", how, host, client, at.Seconds(), n)
	}
	kill(agents[1], 5000, "docker kill")
	time.Sleep(2 * time.Second) // the policy would have restarted it by now
	if st := harness.Inspect(t, agents[1], "{{.State.Running}} {{.RestartCount}}"); st != "false 0" {
		t.Logf("after docker kill the container is %q (running, restarts): restarted by its policy", st)
	} else {
		harness.MustDocker(t, time.Minute, "start", agents[1])
	}
	kill(agents[2], 10000, "crash (host kill -9)")
	harness.Eventually(t, 60*time.Second, "the crashed agent restarted by the restart policy", func() bool {
		return harness.Inspect(t, agents[2], "{{.State.Running}} {{.RestartCount}}") == "true 1"
	})

	var r result
	select {
	case r = <-stressDone:
	case <-time.After(13 * time.Minute):
		t.Fatal("the stress run did not end")
	}
	phase("stress run (20,000 jobs)", start)
	if r.code != 0 {
		t.Fatalf("tributary stress exited %d:\n%s\n%s", r.code, r.out, lastLinesOf(r.errs, 30))
	}
	t.Logf("stress summary:\n%s", lastLinesOf(r.out, 25))

	// The report went to the host's directory through the bind mount.
	matches, _ := filepath.Glob(filepath.Join(reports, "stress-*", "report.json"))
	if len(matches) != 1 {
		t.Fatalf("report.json files in %s: %v, want one", reports, matches)
	}
	raw, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Run struct {
			Outcome  string `json:"outcome"`
			ExitCode int    `json:"exit_code"`
		} `json:"run"`
		Counts struct {
			Inserted int64 `json:"inserted"`
			Finished int64 `json:"finished"`
		} `json:"counts"`
		Monitors struct {
			Agree bool `json:"agree"`
		} `json:"monitors"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("%s: %v", matches[0], err)
	}
	if rep.Run.Outcome != "finished" || rep.Counts.Inserted != total || rep.Counts.Finished != total || !rep.Monitors.Agree {
		t.Errorf("report: outcome %q, inserted %d, finished %d, monitors agree %v; want finished, %d, %d, true",
			rep.Run.Outcome, rep.Counts.Inserted, rep.Counts.Finished, rep.Monitors.Agree, total, total)
	}

	start = time.Now()
	checkNothingLost(t, coord, conn, total)
	// Every job a victim held was rescued and finished by a later attempt.
	if n := harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE id = ANY($1)
		AND (attempt < 2 OR state <> 'completed')`, held); n != 0 {
		t.Errorf("%d of the %d jobs the killed agents held were not rescued and completed", n, len(held))
	}
	t.Logf("%d jobs held by the killed agents, rescued; %d jobs ran more than once in all", len(held),
		harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE attempt > 1`))
	// The killed agents are back under their own names: alive again.
	harness.Eventually(t, 60*time.Second, "the killed agents alive again", func() bool {
		alive := 0
		for _, n := range harness.List(coord.Query(t, "nodes"), "nodes") {
			for _, h := range hosts {
				if n["node"] == h && n["liveness"] == "alive" {
					alive++
				}
			}
		}
		return alive == len(hosts)
	})
	phase("checks", start)
	var leftover int64
	_ = conn.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')`).Scan(&leftover)
	if leftover != 0 {
		t.Errorf("%d jobs not finalized", leftover)
	}
	t.Logf("total before teardown: %.1f s", time.Since(t0).Seconds())
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Command benchtool holds the small measuring helpers of the benchmarks in
// bench/ (never used by tests):
//
//	benchtool wait-events --n N --start-ns NS [--timeout 10m]
//	    Reads the agent's NDJSON events on stdin and counts job events
//	    (job_completed, job_failed, job_cancelled). When N are counted it
//	    prints one JSON line {"events":N,"elapsed_s":…,"end_ns":…} where
//	    elapsed = (wall clock when the N-th event was read) − NS, NS being
//	    the wall clock in Unix nanoseconds taken before the agent started
//	    (date +%s%N), and exits 0. EOF or --timeout before N: exit 1.
//
//	benchtool cpu-snap --pg-data DIR [--database-url URL] [--pid LABEL=PID ...]
//	    Prints a JSON snapshot of CPU times (utime+stime, clock ticks) of the
//	    PostgreSQL server whose data directory is DIR: the postmaster (with
//	    cutime+cstime of its exited children) and every live child, each
//	    named by pg_stat_activity (application_name, else backend_type) when
//	    a URL is given, plus the extra processes given with --pid.
//
//	benchtool cpu-diff --jobs N A.json B.json
//	    Prints the CPU seconds spent between two snapshots: PostgreSQL in
//	    total (live children + exited children + postmaster) and by process
//	    name, and each extra process; with "per 1,000 jobs" figures in
//	    milliseconds; and the whole machine's busy and steal CPU seconds
//	    (/proc/stat), so that what others ran meanwhile shows. One JSON line.
//
//	benchtool cputime --out FILE -- COMMAND [ARGS...]
//	    Runs COMMAND (stdio passed through) and writes {"cpu_s":…,"user_s":…,
//	    "sys_s":…,"wall_s":…,"exit":…} to FILE: the CPU time of the command
//	    and its waited-for children (getrusage via wait4). Exits with the
//	    command's status.
//
//	benchtool get FILE KEY
//	    Prints a value from a one-line JSON object in FILE: KEY is a top-level
//	    key, or "pg:NAME" (CPU seconds of the pg_by_process group NAME of a
//	    cpu-diff, 0 if absent), or "extra:LABEL" (an extra process's CPU s).
//
// Exit status: 0 ok, 1 runtime failure, 2 usage error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const clkTck = 100 // Linux USER_HZ

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	switch os.Args[1] {
	case "wait-events":
		code = waitEvents(os.Args[2:])
	case "cpu-snap":
		code = cpuSnap(os.Args[2:])
	case "cpu-diff":
		code = cpuDiff(os.Args[2:])
	case "get":
		code = jsonGet(os.Args[2:])
	case "cputime":
		code = cpuTime(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool wait-events|cpu-snap|cpu-diff [flags] (see the package comment)")
	os.Exit(2)
}

// ---- wait-events ----

func waitEvents(argv []string) int {
	fs := flag.NewFlagSet("wait-events", flag.ContinueOnError)
	n := fs.Int("n", 0, "number of job events to wait for")
	startNS := fs.Int64("start-ns", 0, "start, wall clock Unix ns")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(argv); err != nil || *n < 1 || *startNS == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchtool wait-events --n N --start-ns NS [--timeout D]")
		return 2
	}
	type result struct {
		count int
		end   time.Time
		err   error
	}
	done := make(chan result, 1)
	go func() {
		r := bufio.NewReaderSize(os.Stdin, 1<<20)
		count := 0
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 && (bytes.Contains(line, []byte(`"event":"job_completed"`)) ||
				bytes.Contains(line, []byte(`"event":"job_failed"`)) ||
				bytes.Contains(line, []byte(`"event":"job_cancelled"`))) {
				count++
				if count == *n {
					done <- result{count: count, end: time.Now()}
					return
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err == io.EOF {
					err = fmt.Errorf("EOF after %d events", count)
				}
				done <- result{count: count, err: err}
				return
			}
		}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			fmt.Fprintf(os.Stderr, "benchtool wait-events: %v\n", res.err)
			return 1
		}
		el := float64(res.end.UnixNano()-*startNS) / 1e9
		fmt.Printf("{\"events\":%d,\"elapsed_s\":%.4f,\"end_ns\":%d}\n", res.count, el, res.end.UnixNano())
		return 0
	case <-time.After(*timeout):
		fmt.Fprintf(os.Stderr, "benchtool wait-events: timeout after %s\n", *timeout)
		return 1
	}
}

// ---- cpu snapshots ----

type proc struct {
	PID   int    `json:"pid"`
	Ticks int64  `json:"ticks"` // utime + stime
	Name  string `json:"name"`
}

type snapshot struct {
	TimeNS     int64   `json:"t_ns"`
	Postmaster int     `json:"postmaster"`
	PMTicks    int64   `json:"pm_ticks"`       // postmaster utime+stime
	PMChildren int64   `json:"pm_child_ticks"` // postmaster cutime+cstime (exited children)
	Children   []proc  `json:"children"`
	Extra      []proc  `json:"extra"`
	Load1      float64 `json:"load1"`
	// Whole machine from /proc/stat (all CPUs, clock ticks): busy = all but
	// idle and iowait; steal = time the hypervisor gave to others.
	MachineBusy  int64 `json:"machine_busy_ticks"`
	MachineSteal int64 `json:"machine_steal_ticks"`
}

// machineTicks returns (busy, steal) clock ticks of all CPUs.
func machineTicks() (int64, int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var busy int64
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		if i != 4 && i != 5 { // idle, iowait
			busy += v
		}
	}
	steal, _ := strconv.ParseInt(f[8], 10, 64)
	return busy, steal
}

// readStat returns (ppid, utime+stime, cutime+cstime) of a process.
func readStat(pid int) (int, int64, int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// comm may contain spaces and parentheses: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("bad stat for %d", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] = state (field 3); field k is f[k-3].
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("short stat for %d", pid)
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return int(num(4)), num(14) + num(15), num(16) + num(17), nil
}

type pidFlag []string

func (p *pidFlag) String() string     { return strings.Join(*p, ",") }
func (p *pidFlag) Set(s string) error { *p = append(*p, s); return nil }

func cpuSnap(argv []string) int {
	fs := flag.NewFlagSet("cpu-snap", flag.ContinueOnError)
	dataDir := fs.String("pg-data", "", "PostgreSQL data directory (postmaster.pid)")
	url := fs.String("database-url", "", "URL to name backends from pg_stat_activity")
	var extra pidFlag
	fs.Var(&extra, "pid", "LABEL=PID of another process to sample (repeatable)")
	if err := fs.Parse(argv); err != nil || *dataDir == "" {
		fmt.Fprintln(os.Stderr, "usage: benchtool cpu-snap --pg-data DIR [--database-url URL] [--pid LABEL=PID ...]")
		return 2
	}
	pidText, err := os.ReadFile(filepath.Join(*dataDir, "postmaster.pid"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool cpu-snap: %v\n", err)
		return 1
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidText), "\n", 2)[0]))
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool cpu-snap: bad postmaster.pid\n")
		return 1
	}
	names := map[int]string{}
	if *url != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, *url)
		if err == nil {
			rows, err := conn.Query(ctx, `SELECT pid, coalesce(nullif(application_name, ''), backend_type, '')
				FROM pg_stat_activity WHERE pid <> pg_backend_pid()`)
			if err == nil {
				for rows.Next() {
					var pid int
					var name string
					if rows.Scan(&pid, &name) == nil {
						// an agent's client sessions are named
						// "tributary-agent:<client id>": one group with
						// the agent's own sessions
						if strings.HasPrefix(name, "tributary-agent:") {
							name = "tributary-agent"
						}
						names[pid] = name
					}
				}
				rows.Close()
			}
			conn.Close(ctx)
		}
		cancel()
	}
	snap := snapshot{TimeNS: time.Now().UnixNano(), Postmaster: pm}
	// Children first, then the postmaster: a child that exits in between is
	// then counted in neither (lost, not double-counted).
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pm {
			continue
		}
		ppid, t, _, err := readStat(pid)
		if err != nil || ppid != pm {
			continue
		}
		name := names[pid]
		if name == "" {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			name = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
			// "postgres: walwriter" stays; a client backend without a
			// pg_stat_activity row is just "backend".
			if strings.Contains(name, "(") || name == "" {
				name = "backend"
			}
		}
		snap.Children = append(snap.Children, proc{PID: pid, Ticks: t, Name: name})
	}
	_, pmT, pmC, err := readStat(pm)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool cpu-snap: %v\n", err)
		return 1
	}
	snap.PMTicks, snap.PMChildren = pmT, pmC
	for _, x := range extra {
		label, p, ok := strings.Cut(x, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil {
			fmt.Fprintf(os.Stderr, "benchtool cpu-snap: --pid wants LABEL=PID, got %q\n", x)
			return 2
		}
		_, t, c, err := readStat(pid)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtool cpu-snap: %v\n", err)
			continue
		}
		snap.Extra = append(snap.Extra, proc{PID: pid, Ticks: t + c, Name: label})
	}
	snap.MachineBusy, snap.MachineSteal = machineTicks()
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		snap.Load1, _ = strconv.ParseFloat(strings.Fields(string(la))[0], 64)
	}
	out, _ := json.Marshal(snap)
	fmt.Println(string(out))
	return 0
}

func readSnap(path string) (*snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s snapshot
	return &s, json.Unmarshal(b, &s)
}

func cpuDiff(argv []string) int {
	fs := flag.NewFlagSet("cpu-diff", flag.ContinueOnError)
	jobs := fs.Int64("jobs", 0, "jobs done between the snapshots (for per-1,000 figures)")
	if err := fs.Parse(argv); err != nil || fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool cpu-diff [--jobs N] A.json B.json")
		return 2
	}
	a, err := readSnap(fs.Arg(0))
	if err == nil {
		var b *snapshot
		b, err = readSnap(fs.Arg(1))
		if err == nil {
			printDiff(a, b, *jobs)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "benchtool cpu-diff: %v\n", err)
	return 1
}

func printDiff(a, b *snapshot, jobs int64) {
	before := map[int]int64{}
	var liveA int64
	for _, p := range a.Children {
		before[p.PID] = p.Ticks
		liveA += p.Ticks
	}
	byName := map[string]int64{}
	var liveB, liveDelta int64
	for _, p := range b.Children {
		liveB += p.Ticks
		d := p.Ticks - before[p.PID]
		liveDelta += d
		byName[p.Name] += d
	}
	total := (liveB + b.PMChildren + b.PMTicks) - (liveA + a.PMChildren + a.PMTicks)
	// Whatever is not in a live child's delta: exited children and the
	// postmaster itself.
	if rest := total - liveDelta; rest != 0 {
		byName["exited/postmaster"] += rest
	}
	secs := func(t int64) float64 { return float64(t) / clkTck }
	type item struct {
		Name    string  `json:"name"`
		Seconds float64 `json:"cpu_s"`
		PerK    float64 `json:"ms_per_1000_jobs,omitempty"`
	}
	perK := func(t int64) float64 {
		if jobs <= 0 {
			return 0
		}
		return secs(t) * 1000 / float64(jobs) * 1000
	}
	var groups []item
	for n, t := range byName {
		if t != 0 {
			groups = append(groups, item{n, secs(t), perK(t)})
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Seconds > groups[j].Seconds })
	// An extra process absent from A started after it: all its CPU counts.
	var extras []item
	for _, pb := range b.Extra {
		t := pb.Ticks
		for _, pa := range a.Extra {
			if pa.PID == pb.PID {
				t -= pa.Ticks
			}
		}
		extras = append(extras, item{pb.Name, secs(t), perK(t)})
	}
	out := map[string]any{
		"wall_s":              float64(b.TimeNS-a.TimeNS) / 1e9,
		"jobs":                jobs,
		"pg_cpu_s":            secs(total),
		"pg_ms_per_1000_jobs": perK(total),
		"pg_by_process":       groups,
		"extra":               extras,
		"load1_before":        a.Load1,
		"machine_busy_s":      secs(b.MachineBusy - a.MachineBusy),
		"machine_steal_s":     secs(b.MachineSteal - a.MachineSteal),
		"load1_after":         b.Load1,
	}
	j, _ := json.Marshal(out)
	fmt.Println(string(j))
}

func jsonGet(argv []string) int {
	if len(argv) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool get FILE KEY")
		return 2
	}
	b, err := os.ReadFile(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool get: %v\n", err)
		return 1
	}
	var m map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(lastLine(b)), &m); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool get: %s: %v\n", argv[0], err)
		return 1
	}
	key := argv[1]
	sumOf := func(list string, name string) float64 {
		var t float64
		arr, _ := m[list].([]any)
		for _, e := range arr {
			g, _ := e.(map[string]any)
			if g["name"] == name {
				v, _ := g["cpu_s"].(float64)
				t += v
			}
		}
		return t
	}
	switch {
	case strings.HasPrefix(key, "pg:"):
		fmt.Printf("%.2f\n", sumOf("pg_by_process", key[3:]))
	case strings.HasPrefix(key, "extra:"):
		fmt.Printf("%.2f\n", sumOf("extra", key[6:]))
	default:
		switch v := m[key].(type) {
		case nil:
			fmt.Println("")
		case float64:
			fmt.Println(strconv.FormatFloat(v, 'f', -1, 64))
		case string:
			fmt.Println(v)
		default:
			j, _ := json.Marshal(v)
			fmt.Println(string(j))
		}
	}
	return 0
}

// lastLine returns the last non-empty line (files may hold a human line
// before the JSON one).
func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

func cpuTime(argv []string) int {
	fs := flag.NewFlagSet("cputime", flag.ContinueOnError)
	out := fs.String("out", "", "result file")
	if err := fs.Parse(argv); err != nil || *out == "" || fs.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: benchtool cputime --out FILE -- COMMAND [ARGS...]")
		return 2
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool cputime: %v\n", err)
		return 1
	}
	go func() {
		for sig := range sigs {
			_ = cmd.Process.Signal(sig)
		}
	}()
	err := cmd.Wait()
	wall := time.Since(t0)
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(os.Stderr, "benchtool cputime: %v\n", err)
			return 1
		}
		code = ee.ExitCode()
		if code < 0 {
			code = 1
		}
	}
	st := cmd.ProcessState
	res := fmt.Sprintf("{\"cpu_s\":%.3f,\"user_s\":%.3f,\"sys_s\":%.3f,\"wall_s\":%.3f,\"exit\":%d}\n",
		(st.UserTime() + st.SystemTime()).Seconds(), st.UserTime().Seconds(), st.SystemTime().Seconds(), wall.Seconds(), code)
	if err := os.WriteFile(*out, []byte(res), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "benchtool cputime: %v\n", err)
		return 1
	}
	return code
}

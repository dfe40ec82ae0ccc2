package harness

// Network namespaces for network fault tests: a test builds its own small
// network -- a hub namespace holding a bridge (and usually PostgreSQL and
// the coordinator) and one namespace per host, each joined to the bridge by
// a veth pair and given its own address -- and then cuts, drops or slows
// the packets between them with iptables INSIDE those namespaces. The root
// namespace (and its firewall) is never touched.
//
// The test process itself stays in the root namespace. It reaches what runs
// in the hub through Unix sockets, which are files and so cross network
// namespaces: PostgreSQL's socket directory (NetPG.SocketURL) and the
// coordinator's control address (ipc://, StartCoordinatorIn).
//
// Names are trib-<pid>-<seq>-<host>: unique per test process and test, so
// tests may run in parallel, and namespaces left by a test process that
// died (a crash, a SIGKILL from ctest's timeout) are recognised by their
// dead pid and removed by the next NewNet. Needs root and iproute2 +
// iptables; without them the test fails (CI runs as root).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Net is one test's network: a hub namespace with a bridge and the hosts
// attached to it, all in the subnet 10.77.<Subnet>.0/24 (the hub is .1).
// Everything is removed at the end of the test (processes inside first).
type Net struct {
	t      testing.TB
	Prefix string // trib-<pid>-<seq>
	Subnet int    // third octet of 10.77.X.0/24
	Hub    *NS

	mu    sync.Mutex
	hosts []*NS
}

// NS is one network namespace of a Net.
type NS struct {
	Name string // the namespace's name (ip netns)
	IP   string // its address on the test network
	Dev  string // its interface on the test network (br0 in the hub)
	net  *Net
}

var (
	netSeq       atomic.Int64
	netStaleOnce sync.Once
	netNameRE    = regexp.MustCompile(`^trib-([0-9]+)-[0-9]+-`)
)

// RequireNetns fails the test unless it can create network namespaces:
// root, ip (iproute2) and iptables present.
func RequireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("network fault tests need root (ip netns, iptables inside namespaces); CI runs them as root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("network fault tests need %s: %v (scripts/setup.sh installs iproute2 and iptables)", tool, err)
		}
	}
}

// run runs a command and returns its combined output or an error that
// carries it.
func run(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// killNamespace SIGKILLs every process in the namespace, waits up to 5 s for
// them to go, and deletes it.
func killNamespace(name string) error {
	for i := 0; i < 50; i++ {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err := run("ip", "netns", "delete", name)
	return err
}

// removeStale deletes trib-<pid>-* namespaces whose test process is gone.
// NewNet calls it once per process, before its first namespace.
func removeStale(t testing.TB) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := netNameRE.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		// Our own pid here is a dead process's that had the same pid: this
		// runs (once) before this process creates any namespace.
		pid, _ := strconv.Atoi(m[1])
		if pid != os.Getpid() && syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its test process still runs
		}
		if err := killNamespace(f[0]); err != nil {
			t.Logf("removing stale namespace %s: %v", f[0], err)
		} else {
			t.Logf("removed stale namespace %s (pid %d is gone)", f[0], pid)
		}
	}
}

// NewNet creates the hub namespace with its bridge (br0, 10.77.X.1/24).
func NewNet(t testing.TB) *Net {
	t.Helper()
	RequireNetns(t)
	netStaleOnce.Do(func() { removeStale(t) })
	seq := netSeq.Add(1)
	n := &Net{
		t:      t,
		Prefix: fmt.Sprintf("trib-%d-%d", os.Getpid(), seq),
		// Each Net is an island (nothing routes between them), so equal
		// subnets could not collide; distinct ones just keep logs readable.
		Subnet: int(seq%250) + 1,
	}
	n.Hub = &NS{Name: n.Prefix + "-hub", IP: n.addr(1), Dev: "br0", net: n}
	t.Cleanup(n.destroy)
	n.must(
		[]string{"ip", "netns", "add", n.Hub.Name},
		[]string{"ip", "-n", n.Hub.Name, "link", "set", "lo", "up"},
		[]string{"ip", "-n", n.Hub.Name, "link", "add", "br0", "type", "bridge"},
		[]string{"ip", "-n", n.Hub.Name, "addr", "add", n.Hub.IP + "/24", "dev", "br0"},
		[]string{"ip", "-n", n.Hub.Name, "link", "set", "br0", "up"},
	)
	t.Logf("network %s: hub %s at %s", n.Prefix, n.Hub.Name, n.Hub.IP)
	return n
}

func (n *Net) addr(host int) string { return fmt.Sprintf("10.77.%d.%d", n.Subnet, host) }

func (n *Net) must(cmds ...[]string) {
	n.t.Helper()
	for _, c := range cmds {
		if _, err := run(c...); err != nil {
			n.t.Fatal(err)
		}
	}
}

// AddHost creates namespace <prefix>-<name> with interface eth0 at the next
// address, joined to the hub's bridge.
func (n *Net) AddHost(name string) *NS {
	n.t.Helper()
	n.mu.Lock()
	idx := len(n.hosts) + 2
	h := &NS{Name: n.Prefix + "-" + name, IP: n.addr(idx), Dev: "eth0", net: n}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	veth := fmt.Sprintf("v%d", idx) // in the hub; names are per namespace
	n.must(
		[]string{"ip", "netns", "add", h.Name},
		[]string{"ip", "-n", h.Name, "link", "set", "lo", "up"},
		[]string{"ip", "-n", n.Hub.Name, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Name},
		[]string{"ip", "-n", n.Hub.Name, "link", "set", veth, "master", "br0"},
		[]string{"ip", "-n", n.Hub.Name, "link", "set", veth, "up"},
		[]string{"ip", "-n", h.Name, "addr", "add", h.IP + "/24", "dev", "eth0"},
		[]string{"ip", "-n", h.Name, "link", "set", "eth0", "up"},
	)
	return h
}

// destroy kills every process in the namespaces and deletes them (hosts
// first, the hub last).
func (n *Net) destroy() {
	n.mu.Lock()
	all := append([]*NS(nil), n.hosts...)
	n.mu.Unlock()
	all = append(all, n.Hub)
	for _, ns := range all {
		if err := killNamespace(ns.Name); err != nil {
			n.t.Errorf("cleanup: %v", err)
		}
	}
}

// Exec runs a command inside the namespace and returns its combined output.
func (ns *NS) Exec(args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", ns.Name}, args...)...)
}

// MustExec is Exec failing the test on an error.
func (ns *NS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Start runs an executable inside the namespace as a Proc (ip netns exec
// execs it, so the Proc's pid is the program's own and signals reach it).
func (ns *NS) Start(t testing.TB, bin string, args []string, env []string) *Proc {
	t.Helper()
	p := Start(t, "ip", append([]string{"netns", "exec", ns.Name, bin}, args...), env)
	p.name = shortName(bin) + "@" + strings.TrimPrefix(ns.Name, ns.net.Prefix+"-")
	return p
}

// Rule is a set of iptables rules added in one namespace; Remove deletes
// them again (also done at the end of the test, with the namespace).
type Rule struct {
	ns    *NS
	specs [][]string // each: chain + match/target, without -A/-D
}

// Iptables appends rules (each a chain followed by its match and target,
// e.g. {"OUTPUT", "-d", ip, "-j", "DROP"}) in the namespace's own filter
// table. The root namespace's firewall is never touched.
func (ns *NS) Iptables(t testing.TB, specs ...[]string) *Rule {
	t.Helper()
	r := &Rule{ns: ns}
	for _, s := range specs {
		ns.MustExec(t, append([]string{"iptables", "-w", "-A"}, s...)...)
		r.specs = append(r.specs, s)
	}
	return r
}

// Remove deletes the rules.
func (r *Rule) Remove(t testing.TB) {
	t.Helper()
	for _, s := range r.specs {
		r.ns.MustExec(t, append([]string{"iptables", "-w", "-D"}, s...)...)
	}
	r.specs = nil
}

// Partition drops every TCP packet between this namespace and ip:port, in
// both directions (nothing is refused: connections hang as when a network
// path dies).
func (ns *NS) Partition(t testing.TB, ip string, port int) *Rule {
	t.Helper()
	p := strconv.Itoa(port)
	return ns.Iptables(t,
		[]string{"OUTPUT", "-p", "tcp", "-d", ip, "--dport", p, "-j", "DROP"},
		[]string{"INPUT", "-p", "tcp", "-s", ip, "--sport", p, "-j", "DROP"})
}

// Loss drops each packet in and out of the namespace's test interface with
// the given probability (0..1), independently per direction.
func (ns *NS) Loss(t testing.TB, probability float64) *Rule {
	t.Helper()
	pr := strconv.FormatFloat(probability, 'f', 4, 64)
	return ns.Iptables(t,
		[]string{"OUTPUT", "-o", ns.Dev, "-m", "statistic", "--mode", "random", "--probability", pr, "-j", "DROP"},
		[]string{"INPUT", "-i", ns.Dev, "-m", "statistic", "--mode", "random", "--probability", pr, "-j", "DROP"})
}

// Dropped returns the packets dropped so far by DROP rules in the
// namespace's INPUT and OUTPUT chains.
func (ns *NS) Dropped(t testing.TB) int64 {
	t.Helper()
	var total int64
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		out := ns.MustExec(t, "iptables", "-w", "-L", chain, "-v", "-n", "-x")
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[2] == "DROP" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					total += n
				}
			}
		}
	}
	return total
}

// NetPG is a private PostgreSQL server running inside a namespace.
type NetPG struct {
	*PrivatePG
	Port      int
	SocketURL string // its "tributary" database through the Unix socket (for the test process)
}

// StartPGIn starts a throwaway server (scripts/pg.sh) inside the namespace,
// listening on the namespace's address (URL, for processes in the test
// network) and on a Unix socket (SocketURL, for the test itself).
func StartPGIn(t testing.TB, ns *NS, pgshArgs ...string) *NetPG {
	t.Helper()
	dir, err := os.MkdirTemp("", "trib-pg-")
	if err != nil {
		t.Fatalf("mkdtemp: %v", err)
	}
	script := filepath.Join(SrcDir(t), "scripts", "pg.sh")
	t.Cleanup(func() {
		_ = exec.Command("bash", script, "stop", dir).Run()
		_ = os.RemoveAll(dir)
	})
	args := append([]string{"bash", script, "start", dir, "--listen", ns.IP}, pgshArgs...)
	out, err := ns.Exec(args...)
	if err != nil {
		t.Fatalf("pg.sh start in %s: %v", ns.Name, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	pg := &NetPG{PrivatePG: &PrivatePG{t: t, Dir: dir, URL: lines[len(lines)-1]}}
	b, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatal(err)
	}
	pg.Port, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pg.sh port file: %v", err)
	}
	pg.SocketURL = fmt.Sprintf("postgres://postgres@/tributary?host=%s&port=%d&sslmode=disable", dir, pg.Port)
	return pg
}

// CoordPort is the port StartCoordinatorIn's coordinator listens on for
// agents (the namespace is the test's own, so a fixed port is free).
const CoordPort = 7100

// StartCoordinatorIn runs tributary-coordinator inside the namespace,
// listening for agents on tcp://<ns address>:7100; its control address is
// a Unix socket (ipc://) so that the CLI run by the test from the root
// namespace reaches it. Query, CLI and the other methods work as for
// StartCoordinator; Restart does not (it would start it outside the
// namespace).
func StartCoordinatorIn(t testing.TB, ns *NS, env []string, extra ...string) *Coordinator {
	t.Helper()
	dir, err := os.MkdirTemp("", "trib-ctl-") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c := &Coordinator{
		Listen:  fmt.Sprintf("tcp://%s:%d", ns.IP, CoordPort),
		Control: "ipc://" + filepath.Join(dir, "control.sock"),
		env:     env,
		t:       t,
	}
	c.args = append([]string{"--listen", c.Listen, "--control", c.Control, "--heartbeat", "500ms"}, extra...)
	c.Proc = ns.Start(t, Bin(t, "tributary-coordinator"), c.args, c.env)
	WaitForStderrLine(t, c.Proc, "CRD-START", 20*time.Second)
	p := c.Proc
	t.Cleanup(func() {
		if r := SanitizerReport(p); r != "" {
			t.Errorf("tributary-coordinator: sanitizer report: %s", r)
		}
	})
	return c
}

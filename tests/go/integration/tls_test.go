package integration

// TLS on the agent->coordinator and CLI->coordinator links (docs/TLS.md):
// nng's tls+tcp:// with certificates made by the test (harness/tls.go).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tributary/tests/harness"
)

// tlsCLIRun runs `tributary args...` with no TLS defaults from the
// harness and returns exit code, stderr and how long it took.
func tlsCLIRun(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	p := harness.Start(t, harness.Bin(t, "tributary"), args, nil)
	code := p.Wait(60 * time.Second)
	if r := harness.SanitizerReport(p); r != "" {
		t.Errorf("tributary %v: sanitizer report: %s", args, r)
	}
	return code, p.Stderr(), time.Since(t0)
}

// expectCLIFails: the command exits non-zero within 15 s (the CLI's
// connect wait is 3 s) and stderr says each of want.
func expectCLIFails(t *testing.T, what string, want []string, args ...string) {
	t.Helper()
	code, errs, took := tlsCLIRun(t, args...)
	if code == 0 {
		t.Errorf("%s: tributary %v exited 0, want an error", what, args)
		return
	}
	if took > 15*time.Second {
		t.Errorf("%s: took %s to fail, want a quick failure", what, took.Round(time.Millisecond))
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, w, errs)
		}
	}
	t.Logf("%s: exit %d after %s: %s", what, code, took.Round(time.Millisecond), strings.TrimSpace(errs))
}

func tlsYAML(ca, cert, key string) string {
	y := "tls:\n  ca_file: " + ca + "\n"
	if cert != "" {
		y += "  cert_file: " + cert + "\n  key_file: " + key + "\n"
	}
	return y
}

// TestTLSCluster: a coordinator with both addresses on tls+tcp:// (and the
// shared secret as well); two agents forward 3,000 jobs' events over TLS;
// `tributary wait` and `status` work over TLS; nothing is lost. A CLI
// that trusts the wrong CA, a plain tcp:// client at the TLS address, and
// a TLS address without --tls-ca each fail quickly with a message that
// says why.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	f := harness.NewTLSFiles(t)
	coord := harness.StartCoordinatorTLS(t, f, []string{"TRIBUTARY_SECRET=" + secret},
		[]string{"--tls-ca", f.CA}, "--data-dir", t.TempDir(), "--database-url", dbURL, "--poll-interval", "300ms")
	var agents []*harness.Proc
	for i := 1; i <= 2; i++ {
		node := fmt.Sprintf("tls%d", i)
		agents = append(agents, clusterAgent(t, dbURL, coord, secret, node, "tq",
			filepath.Join(t.TempDir(), "outbox"), tlsYAML(f.CA, "", "")))
	}
	for _, a := range agents {
		harness.WaitForStderrLine(t, a, "connected to coordinator", 30*time.Second)
	}

	const total = 3000
	type waitResult struct {
		out, errs string
		code      int
	}
	waitDone := make(chan waitResult, 1)
	go func() {
		out, errs, code := coord.CLI(t, 150*time.Second, "wait", "--count", fmt.Sprint(total), "--timeout", "120s", "--json")
		waitDone <- waitResult{out, errs, code}
	}()
	time.Sleep(500 * time.Millisecond)
	insertJobs(t, conn, 2000, "tributary.noop", `{}`, "tq", 25)
	insertJobs(t, conn, 500, "tributary.fail", `{"message": "tls job 7 failed"}`, "tq", 1)
	insertJobs(t, conn, 500, "tributary.snooze", `{"ms": 100, "times": 1}`, "tq", 25)
	var w waitResult
	select {
	case w = <-waitDone:
	case <-time.After(160 * time.Second):
		t.Fatal("tributary wait over TLS did not return")
	}
	if w.code != 0 {
		t.Fatalf("tributary wait over TLS exited %d: %s %s", w.code, w.out, w.errs)
	}
	status := checkNothingLost(t, coord, conn, total)
	for _, k := range []string{"listen", "control"} {
		if v, _ := status["coordinator"].(map[string]any)["tls"].(map[string]any)[k].(bool); !v {
			t.Errorf("status coordinator.tls.%s is not true: %v", k, status["coordinator"])
		}
	}
	if v, _ := status["coordinator"].(map[string]any)["authentication"].(bool); !v {
		t.Errorf("the shared secret is not in force beside TLS: %v", status["coordinator"])
	}
	if n := harness.List(coord.Query(t, "nodes"), "nodes"); len(n) != 2 {
		t.Errorf("%d nodes over TLS, want 2", len(n))
	}
	out, errs, code := coord.CLI(t, 30*time.Second, "status")
	if code != 0 || !strings.Contains(out, "Coordinator") {
		t.Errorf("tributary status over TLS: exit %d\n%s\n%s", code, out, errs)
	}

	port := strings.TrimPrefix(coord.Control, "tls+tcp://localhost:")
	expectCLIFails(t, "CLI trusting the wrong CA",
		[]string{"TLS handshake with " + coord.Control + " failed (certificate not trusted?)"},
		"status", "--control", coord.Control, "--tls-ca", f.OtherCA)
	expectCLIFails(t, "plain tcp:// client at the TLS address",
		[]string{"tcp://localhost:" + port, "tls+tcp://"},
		"status", "--control", "tcp://localhost:"+port)
	expectCLIFails(t, "TLS address without --tls-ca", []string{"--tls-ca"},
		"status", "--control", coord.Control)
	expectCLIFails(t, "TLS options with a tcp:// address", []string{"--tls-ca", "not a TLS address"},
		"status", "--control", "tcp://localhost:"+port, "--tls-ca", f.CA)
	// nng counts a name that does not resolve like a closed handshake:
	// the CLI's own probe must say which it is.
	expectCLIFails(t, "host name that does not resolve", []string{"cannot resolve 'no-such-host.invalid'"},
		"status", "--control", "tcp://no-such-host.invalid:"+port)
	expectCLIFails(t, "TLS address by IP (mbedTLS matches DNS names only)", []string{"DNS names only"},
		"status", "--control", "tls+tcp://127.0.0.1:"+port, "--tls-ca", f.CA)
	if code, errs, _ := tlsCLIRun(t, "status", "--control", "tls+tcp://127.0.0.1:"+port,
		"--tls-ca", f.CA, "--tls-server-name", "localhost"); code != 0 {
		t.Errorf("tls+tcp://127.0.0.1 with --tls-server-name localhost: exit %d: %s", code, errs)
	}

	for _, a := range agents {
		a.Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, a, 30*time.Second)
	}
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
}

// TestTLSClientCertificates: with --tls-client-ca the coordinator admits
// only clients whose certificate its CA signed. An agent without one
// works its jobs but cannot hand over the events: they stay in its outbox
// and it logs why (the coordinator logs the failed handshakes); the
// coordinator has none of them. A CLI without a
// certificate, or with one from another CA, is refused with a message. An
// agent with a certificate gets through; the first one, restarted with a
// certificate on the same outbox, delivers what it held: nothing lost.
func TestTLSClientCertificates(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	conn := harness.Connect(t, dbURL)
	secret := newSecret(t)
	f := harness.NewTLSFiles(t)
	coord := harness.StartCoordinatorTLS(t, f, []string{"TRIBUTARY_SECRET=" + secret},
		[]string{"--tls-ca", f.CA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey},
		"--data-dir", t.TempDir(), "--tls-client-ca", f.CA)
	outbox := filepath.Join(t.TempDir(), "outbox")
	nocert := clusterAgent(t, dbURL, coord, secret, "nocert", "mq", outbox, tlsYAML(f.CA, "", ""))
	harness.WaitForStderrLine(t, nocert, "requires a client certificate", 30*time.Second)
	harness.WaitForStderrLine(t, coord.Proc, "failed the TLS handshake", 30*time.Second)

	const first = 1000
	insertJobs(t, conn, first, "tributary.noop", `{}`, "mq", 25)
	harness.Eventually(t, 60*time.Second, "the agent without a certificate worked its jobs", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == first
	})
	st := coord.Query(t, "status")
	if n := harness.Num(st, "coordinator", "events_applied"); n != 0 {
		t.Errorf("coordinator applied %d events from an agent without a client certificate", n)
	}
	if n := harness.List(coord.Query(t, "nodes"), "nodes"); len(n) != 0 {
		t.Errorf("nodes %v: an agent without a client certificate was admitted", n)
	}
	var held int64
	_ = filepath.Walk(outbox, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			held += info.Size()
		}
		return nil
	})
	if held == 0 {
		t.Errorf("the refused agent's outbox %s is empty: where are its events?", outbox)
	}

	expectCLIFails(t, "CLI without a client certificate", []string{"client certificate"},
		"status", "--control", coord.Control, "--tls-ca", f.CA)
	expectCLIFails(t, "CLI with a certificate from another CA", []string{"certificate not trusted?", "did not accept this client's certificate"},
		"status", "--control", coord.Control, "--tls-ca", f.CA,
		"--tls-cert", f.StrangerCert, "--tls-key", f.StrangerKey)

	withcert := clusterAgent(t, dbURL, coord, secret, "withcert", "mq", filepath.Join(t.TempDir(), "outbox"),
		tlsYAML(f.CA, f.ClientCert, f.ClientKey))
	harness.WaitForStderrLine(t, withcert, "connected to coordinator", 30*time.Second)
	nocert.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, nocert, 30*time.Second)
	insertJobs(t, conn, first, "tributary.noop", `{}`, "mq", 25)
	harness.Eventually(t, 60*time.Second, "the agent with a certificate worked the second batch", func() bool {
		return harness.QueryInt(t, conn, `SELECT count(*) FROM river_job WHERE state = 'completed'`) == 2*first
	})

	// The refused agent again, now with a certificate, on the same outbox.
	again := clusterAgent(t, dbURL, coord, secret, "nocert", "mq", outbox, tlsYAML(f.CA, f.ClientCert, f.ClientKey))
	harness.WaitForStderrLine(t, again, "connected to coordinator", 30*time.Second)
	checkNothingLost(t, coord, conn, 2*first)

	for _, a := range []*harness.Proc{withcert, again} {
		a.Signal(syscall.SIGTERM)
		harness.ExpectCleanExit(t, a, 30*time.Second)
	}
	coord.Signal(syscall.SIGTERM)
	harness.ExpectCleanExit(t, coord.Proc, 30*time.Second)
}

// TestTLSBadSettings: TLS mistakes stop the coordinator and the agent at
// start with exit status 2 and a message naming the problem (no database
// needed: the settings are checked before anything connects).
func TestTLSBadSettings(t *testing.T) {
	t.Parallel()
	f := harness.NewTLSFiles(t)
	garbage := filepath.Join(f.Dir, "garbage.pem")
	openKey := filepath.Join(f.Dir, "open.key")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(openKey, key, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsURL := fmt.Sprintf("tls+tcp://localhost:%d", harness.FreePort(t))
	ctl := fmt.Sprintf("tcp://127.0.0.1:%d", harness.FreePort(t))
	cases := []struct {
		name, bin string
		args, env []string
		want      string
	}{
		{"coordinator: TLS address without certificate", "tributary-coordinator",
			[]string{"--listen", tlsURL, "--control", ctl}, nil, "--tls-cert FILE --tls-key FILE"},
		{"coordinator: certificate without TLS address", "tributary-coordinator",
			[]string{"--control", ctl, "--tls-cert", f.ServerCert, "--tls-key", f.ServerKey}, nil, "neither --listen"},
		{"coordinator: key of another certificate", "tributary-coordinator",
			[]string{"--listen", tlsURL, "--control", ctl, "--tls-cert", f.ServerCert, "--tls-key", f.ClientKey}, nil,
			"does not match the certificate"},
		{"coordinator: key readable by others", "tributary-coordinator",
			[]string{"--listen", tlsURL, "--control", ctl, "--tls-cert", f.ServerCert, "--tls-key", openKey}, nil,
			"chmod 600"},
		{"coordinator: garbage certificate", "tributary-coordinator",
			[]string{"--listen", tlsURL, "--control", ctl, "--tls-key", f.ServerKey},
			[]string{"TRIBUTARY_TLS_CERT=" + garbage}, "no PEM certificate"},
		{"coordinator: missing client CA file", "tributary-coordinator",
			[]string{"--listen", tlsURL, "--control", ctl, "--tls-cert", f.ServerCert, "--tls-key", f.ServerKey,
				"--tls-client-ca", filepath.Join(f.Dir, "missing.pem")}, nil, "No such file"},
		{"agent: TLS coordinator without CA", "tributary-agent",
			[]string{"--queue", "default:1", "--coordinator", tlsURL}, nil, "tls.ca_file, --tls-ca or TRIBUTARY_TLS_CA"},
		{"agent: CA with a tcp:// coordinator", "tributary-agent",
			[]string{"--queue", "default:1", "--coordinator", "tcp://localhost:1", "--tls-ca", f.CA}, nil,
			"is not tls+tcp://"},
		{"agent: garbage CA from the environment", "tributary-agent",
			[]string{"--queue", "default:1", "--coordinator", tlsURL},
			[]string{"TRIBUTARY_TLS_CA=" + garbage}, "no PEM certificate"},
		{"agent: client key readable by others", "tributary-agent",
			[]string{"--queue", "default:1", "--coordinator", tlsURL, "--tls-ca", f.CA,
				"--tls-cert", f.ServerCert, "--tls-key", openKey}, nil, "chmod 600"},
	}
	for _, c := range cases {
		p := harness.Start(t, harness.Bin(t, c.bin), c.args, c.env)
		code := p.Wait(20 * time.Second)
		if r := harness.SanitizerReport(p); r != "" {
			t.Errorf("%s: sanitizer report: %s", c.name, r)
		}
		if code != 2 || !strings.Contains(p.Stderr(), c.want) {
			t.Errorf("%s: exit %d (want 2), stderr does not say %q or does:\n%s", c.name, code, c.want, p.Stderr())
		}
	}
}

// TestTLSEnvPlainControl: the TRIBUTARY_TLS_* variables are ignored for a
// plain control address -- a CLI in the coordinator's own environment (its
// container's health check on tcp://127.0.0.1) sees the coordinator's
// TRIBUTARY_TLS_CERT and _KEY -- while a --tls-* flag there is an error.
func TestTLSEnvPlainControl(t *testing.T) {
	f := harness.NewTLSFiles(t)
	coord := harness.StartCoordinator(t, nil)
	env := []string{"TRIBUTARY_TLS_CERT=" + f.ServerCert, "TRIBUTARY_TLS_KEY=" + f.ServerKey,
		"TRIBUTARY_TLS_CA=" + f.CA}
	p := harness.Start(t, harness.Bin(t, "tributary"), []string{"status", "--control", coord.Control}, env)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Errorf("tributary status at a tcp:// address with TRIBUTARY_TLS_* set: exit %d: %s", code, p.Stderr())
	}
	expectCLIFails(t, "--tls-cert with a tcp:// address", []string{"--tls-cert", "not a TLS address"},
		"status", "--control", coord.Control, "--tls-cert", f.ClientCert)
	// an empty value (--tls-ca "$UNSET") is a usage error, not a file ""
	expectCLIFails(t, "--tls-ca with an empty value", []string{"option --tls-ca needs a value"},
		"status", "--control", coord.Control, "--tls-ca", "")
	expectCLIFails(t, "--tls-ca= with an empty value", []string{"option --tls-ca needs a value"},
		"status", "--control", coord.Control, "--tls-ca=")
}

// TestTLSHandshakeFailuresCounted: CRD-TLS counts, per address, the client
// certificates the coordinator refused -- not the established connections
// that end (nng counts both among a listener's errors): an agent killed
// while connected is no failed handshake on the agents' address; a CLI
// without a certificate, afterwards, is reported for the control address
// (whose counters were read from the agents' listener before).
func TestTLSHandshakeFailuresCounted(t *testing.T) {
	t.Parallel()
	dbURL := harness.NewRiverDB(t)
	secret := newSecret(t)
	f := harness.NewTLSFiles(t)
	coord := harness.StartCoordinatorTLS(t, f, []string{"TRIBUTARY_SECRET=" + secret},
		[]string{"--tls-ca", f.CA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey},
		"--tls-client-ca", f.CA)
	a := clusterAgent(t, dbURL, coord, secret, "killed", "hq", filepath.Join(t.TempDir(), "outbox"),
		tlsYAML(f.CA, f.ClientCert, f.ClientKey))
	harness.WaitForStderrLine(t, coord.Proc, "agent killed connected", 30*time.Second)
	a.Signal(syscall.SIGKILL)
	harness.WaitForStderrLine(t, coord.Proc, "agent killed disconnected", 30*time.Second)
	// Two of the coordinator's 5 s counts pass with the ended connection
	// (a wait for a report that must not come: it cannot fail by itself).
	time.Sleep(11 * time.Second)
	expectCLIFails(t, "CLI without a client certificate", []string{"client certificate"},
		"status", "--control", coord.Control, "--tls-ca", f.CA)
	re := regexp.MustCompile(`CRD-TLS: (\w+): (\d+) connection\(s\)`)
	total := func(addr string) int {
		n := 0
		for _, m := range re.FindAllStringSubmatch(coord.Proc.Stderr(), -1) {
			if addr == "" || m[1] == addr {
				v, _ := strconv.Atoi(m[2])
				n += v
			}
		}
		return n
	}
	harness.Eventually(t, 30*time.Second, "CRD-TLS reports the CLI without a certificate", func() bool {
		return total("control") > 0
	})
	if n := total("ingest"); n != 0 {
		t.Errorf("CRD-TLS counted %d refused handshakes on the agents' address, want 0 (an agent killed "+
			"after its handshake):\n%s", n, coord.Proc.Stderr())
	}
}

package harness

// Docker and docker-compose for the deployment tests (compose_test.go): the
// real engine, images built locally (nothing is pulled), one compose
// project per test under a unique name, torn down with its volumes when the
// test ends, pass or fail.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RequireDocker fails the test unless the docker CLI, docker-compose and a
// reachable engine are there (the test is labelled `docker`:
// `ctest -LE docker` leaves it out on machines without them).
func RequireDocker(t testing.TB) {
	t.Helper()
	for _, b := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: this test needs the Docker engine and docker-compose (or run ctest -LE docker)", b)
		}
	}
	if out, code := Docker(t, 30*time.Second, "info", "--format", "{{.ServerVersion}}"); code != 0 {
		t.Fatalf("the Docker engine does not answer (docker info): %s", out)
	}
}

// runCmd runs a command with a deadline and returns its standard output,
// its standard error and its exit code (-1 when it could not start or was
// killed at the deadline).
func runCmd(t testing.TB, timeout time.Duration, env []string, dir, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return "", err.Error(), -1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), errb.String() + fmt.Sprintf("\n(killed after %s)", timeout), -1
	}
}

func joined(out, errs string) string {
	if out == "" || errs == "" {
		return out + errs
	}
	return strings.TrimRight(out, "\n") + "\n" + errs
}

// Docker runs the docker CLI.
func Docker(t testing.TB, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	out, errs, code := runCmd(t, timeout, nil, "", "docker", args...)
	if code != 0 {
		return joined(out, errs), code
	}
	return out, code
}

// MustDocker runs the docker CLI and fails the test on a non-zero exit.
func MustDocker(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	out, code := Docker(t, timeout, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d\n%s", strings.Join(args, " "), code, tail(out, 40))
	}
	return out
}

// ImageExists says whether the engine has an image of that name.
func ImageExists(t testing.TB, name string) bool {
	t.Helper()
	_, code := Docker(t, 30*time.Second, "image", "inspect", name)
	return code == 0
}

// BaseImage makes sure the debootstrapped Debian 12 base image exists
// (deploy/base-image.sh, a no-op when it does) and returns its name.
func BaseImage(t testing.TB) string {
	t.Helper()
	const name = "tributary-base:bookworm"
	out, errs, code := runCmd(t, 15*time.Minute, nil, SrcDir(t), "deploy/base-image.sh", "--name", name)
	if code != 0 {
		t.Fatalf("deploy/base-image.sh: exit %d\n%s", code, tail(joined(out, errs), 40))
	}
	return name
}

// Compose is one docker-compose project.
type Compose struct {
	Project string
	Files   []string
	Env     []string // on top of the test's environment
	EnvFile string   // --env-file: instead of a .env beside the first file
	t       testing.TB
}

// NewCompose names a project after the test (plus a random suffix, so runs
// never share containers, networks or volumes) and registers its teardown:
// on failure the last log lines of every service, then `down -v`.
func NewCompose(t testing.TB, env []string, files ...string) *Compose {
	t.Helper()
	c := &Compose{Project: randomName("tribct"), Files: files, Env: env, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.Run(2*time.Minute, "logs", "--no-color", "--tail", "60")
			t.Logf("compose logs (last lines per container):\n%s", out)
		}
		start := time.Now()
		out, code := c.Run(3*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "10")
		if code != 0 {
			t.Errorf("docker-compose down: exit %d\n%s", code, tail(out, 20))
		}
		t.Logf("teardown (down -v): %s", time.Since(start).Round(100*time.Millisecond))
	})
	return c
}

func (c *Compose) args(args []string) []string {
	a := []string{"--ansi", "never", "-p", c.Project}
	if c.EnvFile != "" {
		a = append(a, "--env-file", c.EnvFile)
	}
	for _, f := range c.Files {
		a = append(a, "-f", f)
	}
	return append(a, args...)
}

// Run runs docker-compose with the project's files and environment and
// returns its output (standard output, then standard error) and exit code.
func (c *Compose) Run(timeout time.Duration, args ...string) (string, int) {
	c.t.Helper()
	out, errs, code := runCmd(c.t, timeout, c.Env, filepath.Dir(c.Files[0]), "docker-compose", c.args(args)...)
	return joined(out, errs), code
}

// RunSplit runs docker-compose and returns its standard output, standard
// error and exit code.
func (c *Compose) RunSplit(timeout time.Duration, args ...string) (string, string, int) {
	c.t.Helper()
	return runCmd(c.t, timeout, c.Env, filepath.Dir(c.Files[0]), "docker-compose", c.args(args)...)
}

// MustRun runs docker-compose, fails the test on a non-zero exit, and
// returns the standard output alone (compose's notes go to standard error).
func (c *Compose) MustRun(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, errs, code := runCmd(c.t, timeout, c.Env, filepath.Dir(c.Files[0]), "docker-compose", c.args(args)...)
	if code != 0 {
		c.t.Fatalf("docker-compose %s: exit %d\n%s", strings.Join(args, " "), code, tail(joined(out, errs), 40))
	}
	return out
}

// Containers lists the ids of a service's containers (running or not).
func (c *Compose) Containers(service string) []string {
	c.t.Helper()
	out := c.MustRun(time.Minute, "ps", "-a", "-q", service)
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); len(l) >= 12 && strings.Trim(l, "0123456789abcdef") == "" {
			ids = append(ids, l)
		}
	}
	return ids
}

// Port returns HOST:PORT where a service's container port is published.
func (c *Compose) Port(service string, port int) string {
	c.t.Helper()
	out := strings.TrimSpace(c.MustRun(time.Minute, "port", service, fmt.Sprint(port)))
	lines := strings.Split(out, "\n")
	hp := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(hp, "127.0.0.1:") {
		c.t.Fatalf("%s:%d is published at %q, want 127.0.0.1:PORT", service, port, hp)
	}
	return hp
}

// Inspect returns `docker inspect -f FORMAT id`, trimmed.
func Inspect(t testing.TB, id, format string) string {
	t.Helper()
	return strings.TrimSpace(MustDocker(t, 30*time.Second, "inspect", "-f", format, id))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

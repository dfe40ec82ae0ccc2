package harness

// Headless Chromium screenshots of HTML files (the stress report) and pixel
// counts that tell a drawn chart from an empty frame.
//
// Chromium is Debian's `chromium` package (scripts/setup.sh); TRIB_CHROMIUM
// names another binary. Each screenshot runs a fresh browser with a private
// profile under t.TempDir(): about 2.5 CPU-seconds, 2-10 s of wall time
// depending on the machine's load.

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ScreenshotTimeout bounds one browser run.
const ScreenshotTimeout = 120 * time.Second

// chromiumPath finds the browser: $TRIB_CHROMIUM, else the binary the
// Debian launcher script runs (no shell wrapper in between), else chromium
// or chromium-browser on PATH.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TRIB_CHROMIUM"); p != "" {
		return p
	}
	if st, err := os.Stat("/usr/lib/chromium/chromium"); err == nil && st.Mode().IsRegular() {
		return "/usr/lib/chromium/chromium"
	}
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install Debian's chromium package (scripts/setup.sh) or set TRIB_CHROMIUM")
	return ""
}

// Screenshot renders htmlPath in headless Chromium with a w x h viewport
// and writes the PNG to pngPath (w x h pixels, device scale 1). The test
// fails when the browser does not produce a decodable PNG within
// ScreenshotTimeout.
//
// Flags: --no-sandbox because the tests run as root (Chromium refuses to
// start as root with its sandbox); --disable-gpu (no GPU here);
// --disable-dev-shm-usage (containers often have a small /dev/shm);
// --hide-scrollbars so a scrollbar is not drawn into the picture; a private
// --user-data-dir, HOME and XDG directories so nothing is read from or
// left in the real profile.
func Screenshot(t testing.TB, htmlPath, pngPath string, w, h int) {
	t.Helper()
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	pngAbs, err := filepath.Abs(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(pngAbs)
	home := t.TempDir()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--disable-background-networking", "--mute-audio",
		"--force-device-scale-factor=1",
		"--user-data-dir=" + filepath.Join(home, "profile"),
		"--screenshot=" + pngAbs,
		fmt.Sprintf("--window-size=%d,%d", w, h),
		"file://" + abs,
	}
	ctx, cancel := context.WithTimeout(context.Background(), ScreenshotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath(t), args...)
	cmd.Env = append(os.Environ(), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:")
	// Chromium forks helpers (zygote, renderer, GPU, network): a timeout
	// kills the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output to a file, not a pipe: a helper that outlives the browser
	// cannot hold Run() up.
	logf, err := os.Create(filepath.Join(home, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout = logf
	cmd.Stderr = logf
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers
	}
	out, _ := os.ReadFile(logf.Name())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium: no screenshot of %s within %s:\n%s", htmlPath, ScreenshotTimeout, lastLines(string(out), tailLines))
	}
	if err != nil {
		t.Fatalf("chromium: %v:\n%s", err, lastLines(string(out), tailLines))
	}
	img := decodePNG(t, pngAbs)
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("chromium: screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	t.Logf("screenshot of %s: %dx%d in %s", filepath.Base(htmlPath), w, h, took.Round(time.Millisecond))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func decodePNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	return img
}

// PixelStats counts what an image shows.
type PixelStats struct {
	Total int
	// Colored: saturated pixels (max - min channel >= SaturationMin), what
	// a series line or bar in colour leaves; grey text, axes, grid lines
	// and anti-aliasing of grey shapes are not.
	Colored int
	// ColoredRows: image rows that hold at least one coloured pixel (a
	// chart's lines spread over many rows; a thin coloured rule does not).
	ColoredRows int
	// Ink: pixels that differ from the background (the most common colour)
	// by more than InkMin in some channel: text, frames, grid and data.
	Ink int
	// Background is the most common colour (8-bit RGB).
	Background [3]uint8
}

const (
	SaturationMin = 48 // of 255
	InkMin        = 32 // of 255
)

// Pixels decodes the PNG at path and counts its pixels.
func Pixels(t testing.TB, path string) PixelStats {
	t.Helper()
	img := decodePNG(t, path)
	b := img.Bounds()
	rgb := func(x, y int) (uint8, uint8, uint8) {
		r, g, bl, _ := img.At(x, y).RGBA() // premultiplied; screenshots are opaque
		return uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)
	}
	freq := map[[3]uint8]int{}
	for y := b.Min.Y; y < b.Max.Y; y += 4 { // a sample is enough for the mode
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl := rgb(x, y)
			freq[[3]uint8{r, g, bl}]++
		}
	}
	var st PixelStats
	best := -1
	for c, n := range freq {
		if n > best {
			best, st.Background = n, c
		}
	}
	diff := func(a, b uint8) int {
		if a > b {
			return int(a - b)
		}
		return int(b - a)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		rowColored := false
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl := rgb(x, y)
			st.Total++
			hi, lo := max(r, g, bl), min(r, g, bl)
			if int(hi)-int(lo) >= SaturationMin {
				st.Colored++
				rowColored = true
			}
			bg := st.Background
			if diff(r, bg[0]) > InkMin || diff(g, bg[1]) > InkMin || diff(bl, bg[2]) > InkMin {
				st.Ink++
			}
		}
		if rowColored {
			st.ColoredRows++
		}
	}
	return st
}

// ColoredPixels is Pixels(t, path).Colored.
func ColoredPixels(t testing.TB, path string) int {
	t.Helper()
	return Pixels(t, path).Colored
}

// InkPixels is Pixels(t, path).Ink.
func InkPixels(t testing.TB, path string) int {
	t.Helper()
	return Pixels(t, path).Ink
}

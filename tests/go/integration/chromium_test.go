package integration

// The headless-Chromium screenshot check the HTML report's test relies on
// (harness.Screenshot, harness.Pixels): a page with an inline SVG chart
// shows many coloured pixels, the same page with an empty chart frame
// (axes, grid, labels, no data) shows next to none but is not blank.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tributary/tests/harness"
)

// chartPage is a self-contained page with one 600x300 SVG chart: grey
// frame, grid and labels, and, when series is set, two coloured lines.
func chartPage(series bool) string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>chart</title>
<style>body{margin:20px;font-family:"DejaVu Sans",sans-serif;background:#fff;color:#222}</style>
</head><body><h1>Throughput</h1>
<svg width="600" height="300" viewBox="0 0 600 300" xmlns="http://www.w3.org/2000/svg">
<rect x="40.5" y="10.5" width="540" height="250" fill="none" stroke="#888"/>`)
	for i := 1; i < 5; i++ {
		y := 10 + i*50
		fmt.Fprintf(&b, `<line x1="40" x2="580" y1="%d.5" y2="%d.5" stroke="#ddd"/>`, y, y)
		fmt.Fprintf(&b, `<text x="34" y="%d" font-size="11" text-anchor="end" fill="#555">%d</text>`, y+4, (5-i)*100)
	}
	for i := 0; i <= 6; i++ {
		fmt.Fprintf(&b, `<text x="%d" y="278" font-size="11" text-anchor="middle" fill="#555">%ds</text>`, 40+i*90, i*10)
	}
	if series {
		var p1, p2 strings.Builder
		for i := 0; i <= 54; i++ {
			x := 40 + i*10
			fmt.Fprintf(&p1, "%d,%d ", x, 250-(i*4)%200)
			fmt.Fprintf(&p2, "%d,%d ", x, 60+(i*7)%150)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="%s"/>`, p1.String())
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#d62728" stroke-width="2" points="%s"/>`, p2.String())
	}
	b.WriteString(`</svg><p>jobs finished per second</p></body></html>`)
	return b.String()
}

func TestChromiumScreenshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shot := func(name string, series bool) harness.PixelStats {
		html := filepath.Join(dir, name+".html")
		if err := os.WriteFile(html, []byte(chartPage(series)), 0o644); err != nil {
			t.Fatal(err)
		}
		png := filepath.Join(dir, name+".png")
		harness.Screenshot(t, html, png, 800, 600)
		st := harness.Pixels(t, png)
		t.Logf("%s: %d pixels, %d coloured in %d rows, %d ink, background %v",
			name, st.Total, st.Colored, st.ColoredRows, st.Ink, st.Background)
		return st
	}
	chart := shot("chart", true)
	empty := shot("empty", false)

	if chart.Total != 800*600 || empty.Total != 800*600 {
		t.Fatalf("screenshots of %d and %d pixels, want %d", chart.Total, empty.Total, 800*600)
	}
	if chart.Background != [3]uint8{255, 255, 255} {
		t.Errorf("chart page background %v, want white", chart.Background)
	}
	// Two 2 px lines across 540 px zig-zagging over ~200 px: thousands of
	// coloured pixels on well over a hundred rows.
	if chart.Colored < 2000 || chart.ColoredRows < 150 {
		t.Errorf("chart page: %d coloured pixels in %d rows, want >= 2000 in >= 150", chart.Colored, chart.ColoredRows)
	}
	// The empty frame is drawn (grid, labels, heading: ink) but holds no
	// colour: the check tells an empty chart from a drawn one.
	if empty.Colored > 20 {
		t.Errorf("empty chart page: %d coloured pixels, want ~0", empty.Colored)
	}
	if empty.Ink < 1000 {
		t.Errorf("empty chart page: %d ink pixels: the page did not render", empty.Ink)
	}
	if chart.Ink <= empty.Ink {
		t.Errorf("ink: chart %d <= empty %d", chart.Ink, empty.Ink)
	}
	if harness.ColoredPixels(t, filepath.Join(dir, "chart.png")) != chart.Colored ||
		harness.InkPixels(t, filepath.Join(dir, "empty.png")) != empty.Ink {
		t.Error("ColoredPixels/InkPixels disagree with Pixels")
	}
}

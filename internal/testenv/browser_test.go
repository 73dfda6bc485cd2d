package testenv_test

import (
	"bytes"
	"fmt"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestBrowser: the harness's Chromium reaches a mapped host by its name
// (the server sees that Host, the cookie is kept for it), a new context
// has none of another's cookies, Submit types into a form and posts it, a
// screenshot is the whole page as a PNG, and when the test ends nothing of
// the browser runs or stays on disk.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, "<p>posted %s and %s</p>", html.EscapeString(r.PostFormValue("name")), html.EscapeString(r.PostFormValue("color")))
			return
		}
		seen := "none"
		if c, err := r.Cookie("visit"); err == nil {
			seen = c.Value
		}
		http.SetCookie(w, &http.Cookie{Name: "visit", Value: "again", Path: "/"})
		fmt.Fprintf(w, `<body style="margin:0"><p>host %s cookie %s</p><form method="post" action="/form"><input name="name"><input name="color">
<button type="submit">Send</button></form><div style="height:1500px"></div></body>`, html.EscapeString(r.Host), seen)
	}))
	defer srv.Close()
	var dir string
	t.Run("browse", func(t *testing.T) {
		b := testenv.StartBrowser(t, testenv.BrowserOptions{
			Resolve: map[string]string{"*.example.test": srv.Listener.Addr().String()}, Width: 640, Height: 480,
		})
		dir = b.Dir
		tab := b.NewContext(t)
		const page = "http://app-7c77eb36.example.test/"
		if code := tab.Open(page); code != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", page, code)
		}
		if text := tab.Text(); !strings.Contains(text, "host app-7c77eb36.example.test cookie none") {
			t.Errorf("first visit: %q", text)
		}
		tab.Open(page)
		if text := tab.Text(); !strings.Contains(text, "cookie again") {
			t.Errorf("second visit, same context: %q, want the cookie back", text)
		}
		if cs := tab.Cookies(page); len(cs) != 1 || cs[0].Domain != "app-7c77eb36.example.test" {
			t.Errorf("cookies for %s: %v, want one, host-only", page, cs)
		}
		fresh := b.NewContext(t)
		fresh.Open(page)
		if text := fresh.Text(); !strings.Contains(text, "cookie none") {
			t.Errorf("a new context: %q, want no cookie", text)
		}
		shot, err := os.ReadFile(fresh.Screenshot("page"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("the screenshot is no PNG: %v", err)
		}
		if size := img.Bounds().Size(); size.X != 640 || size.Y < 1500 {
			t.Errorf("screenshot %v, want the whole page: 640 wide, over 1500 high", size)
		}
		if code := fresh.Submit(map[string]string{"name": "Ada", "color": "green"}); code != http.StatusOK {
			t.Errorf("submit: HTTP %d", code)
		}
		if text := fresh.WaitText("posted"); !strings.Contains(text, "posted Ada and green") || fresh.URL() != "http://app-7c77eb36.example.test/form" {
			t.Errorf("after submit: %s shows %q", fresh.URL(), text)
		}
	})
	if dir == "" {
		return // skipped: no Chromium
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the browser's directory %s is still there (%v)", dir, err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		// The reaper (testenv's own, not the browser's) may still be
		// ending, and so may the commands it runs (its cat of the pids
		// file, its rm): the CI run of 3a9564a caught its cat.
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) && !isReaper(b) && !isReaper(parentCmdline(p)) {
			t.Errorf("%s still runs: %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

// isReaper reports whether cmdline is testenv's reaper's.
func isReaper(cmdline []byte) bool { return bytes.Contains(cmdline, []byte("testenv-reaper")) }

// parentCmdline is the command line of the parent of the process whose
// /proc/PID/cmdline is path (nil once either is gone).
func parentCmdline(path string) []byte {
	stat, err := os.ReadFile(filepath.Join(filepath.Dir(path), "stat"))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 2 {
		return nil
	}
	b, _ := os.ReadFile("/proc/" + fields[1] + "/cmdline")
	return b
}

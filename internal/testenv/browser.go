package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A real browser for the tests of what people see: Debian's Chromium,
// headless, driven through the DevTools protocol (chromedp, over a pipe).
//
//	StartBrowser(t, opts)   one Chromium for the test, its own profile
//	                        directory, hosts mapped by opts.Resolve; stopped
//	                        (its whole process group) when t ends
//	Browser.NewContext(t)   a tab in a new browser context: a fresh profile
//	                        with no cookies or storage of any other, as a
//	                        new incognito window would be
//	Tab.Open, Text, WaitText, WaitURL, Submit, Cookies, Screenshot
//
// Chromium resolves host names itself, so a test maps the hosts it serves
// (Resolve) instead of editing /etc/hosts: the browser asks for the real
// host name and keeps cookies for it, not for 127.0.0.1.

// ChromiumPath is where Debian's chromium package puts the browser
// (hack/deps.sh browser installs it).
const ChromiumPath = "/usr/bin/chromium"

// ArtifactsVar names the directory the tests write screenshots to; unset,
// they go to _artifacts/ at the top of the repository (ignored by git).
const ArtifactsVar = "SHIPPER_ARTIFACTS"

// BrowserOptions configure StartBrowser.
type BrowserOptions struct {
	// Resolve maps host patterns to addresses, as Chromium's
	// --host-resolver-rules MAP does: {"*.example.com": "127.0.0.1:8080"}
	// sends every host under example.com, whatever the URL's port, to
	// 127.0.0.1:8080. A pattern without a wildcard maps one host.
	Resolve map[string]string
	// Artifacts is the directory Tab.Screenshot writes to; "" is
	// ArtifactsDir(t).
	Artifacts string
	// Width and Height are the window's, 1024 by 768 by default; a
	// screenshot takes the whole page, however long.
	Width, Height int
}

// Browser is a running Chromium; StartBrowser starts it.
type Browser struct {
	// Artifacts is the directory screenshots go to.
	Artifacts string
	// Dir holds the browser's profile, caches and log (chromium.log); it
	// is removed when the browser stops.
	Dir string

	ctx       context.Context // the browser's first tab
	cancel    context.CancelFunc
	allocStop context.CancelFunc
	reaper    *os.File
	pgid      int
	stopOnce  sync.Once
}

// StartBrowser starts headless Chromium for t and stops it, with every
// process it started, when t ends. It skips t as RequireBrowser does.
func StartBrowser(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	RequireBrowser(t)
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 1024, 768
	}
	if opts.Artifacts == "" {
		opts.Artifacts = ArtifactsDir(t)
	}
	dir, reaper, err := newDir(dirPrefix + "browser-")
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{Artifacts: opts.Artifacts, Dir: dir, reaper: reaper}
	t.Cleanup(func() { b.stop(t) })
	log, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // the browser has its own copy
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.DisableGPU,
		chromedp.WindowSize(opts.Width, opts.Height),
		// No automatic https:// attempt first for an http:// URL: the
		// tests' servers speak plain HTTP on the mapped port.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
		// Everything Chromium writes goes under dir, its crash handler's
		// database too, whose command line then names dir (stop).
		chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache")),
		chromedp.CombinedOutput(log),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Dir = dir
			// A group of its own, so stop (and the reaper) kill every
			// process of the browser; the kernel kills the browser if
			// the test binary dies.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	}
	if os.Geteuid() == 0 {
		// "Running as root without --no-sandbox is not supported".
		flags = append(flags, chromedp.NoSandbox)
	}
	if rules := resolverRules(opts.Resolve); rules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", rules))
	}
	allocCtx, allocStop := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:], flags...)...)
	b.allocStop = allocStop
	b.ctx, b.cancel = chromedp.NewContext(allocCtx)
	// The first run starts the browser with the context it is given, which
	// the browser then lives as long as: it must not be a timeout's.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(b.ctx) }()
	select {
	case err = <-started:
	case <-time.After(time.Minute):
		err = errors.New("no answer in a minute")
	}
	if err != nil {
		t.Fatalf("starting Chromium: %v; its log:\n%s", err, tail(log.Name(), 20))
	}
	b.pgid = chromedp.FromContext(b.ctx).Browser.Process().Pid
	if err := appendLine(filepath.Join(dir, pidsFile), strconv.Itoa(b.pgid)); err != nil {
		t.Fatal(err)
	}
	return b
}

// RequireBrowser skips t under -short or without Chromium, except in CI
// (CI set), where a missing Chromium fails t. StartBrowser calls it; a
// test calls it first to skip before it sets up anything else.
func RequireBrowser(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: runs Chromium (run without -short)")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (hack/deps.sh browser installs Debian's chromium): %v", ChromiumPath, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// resolverRules is Chromium's --host-resolver-rules for m, in a stable
// order.
func resolverRules(m map[string]string) string {
	var rules []string
	for host, addr := range m {
		rules = append(rules, "MAP "+host+" "+addr)
	}
	slices.Sort(rules)
	return strings.Join(rules, ", ")
}

// stop closes the browser, then kills what is left of its process group
// and checks that nothing is; the profile goes with its directory.
func (b *Browser) stop(t testing.TB) {
	b.stopOnce.Do(func() {
		if b.cancel != nil {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			_ = chromedp.Cancel(ctx) // a graceful close; the kill below is what counts
			cancel()
			b.cancel()
		}
		if b.pgid > 0 {
			_ = syscall.Kill(-b.pgid, syscall.SIGKILL)
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Kill(-b.pgid, 0) == nil {
				if time.Now().After(deadline) {
					t.Errorf("Chromium's processes (group %d) still run after SIGKILL", b.pgid)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// Chromium's crash handlers run in sessions of their own, out of
		// the group; they end with the browser, or here.
		for quiet, deadline := 0, time.Now().Add(10*time.Second); quiet < 3; time.Sleep(20 * time.Millisecond) {
			if killNaming(b.Dir) == 0 {
				quiet++
			} else if quiet = 0; time.Now().After(deadline) {
				t.Errorf("processes naming %s still run after SIGKILL", b.Dir)
				break
			}
		}
		if b.allocStop != nil {
			b.allocStop()
		}
		_ = os.RemoveAll(b.Dir)
		b.reaper.Close()
	})
}

// killNaming sends SIGKILL to every process whose command line names
// dir, and returns how many it found.
func killNaming(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// ArtifactsDir is the directory for t's screenshots and other files worth
// keeping after it: $SHIPPER_ARTIFACTS/<test>, else _artifacts/<test> at
// the top of the repository (the directory holding go.mod), else a
// directory t removes. It is emptied first, so it holds the last run's.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	root := os.Getenv(ArtifactsVar)
	if root == "" {
		top, err := moduleRoot()
		if err != nil {
			t.Logf("artifacts go to a temporary directory: %v", err)
			return t.TempDir()
		}
		root = filepath.Join(top, "_artifacts")
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "__", " ", "_").Replace(t.Name()))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleRoot is the nearest directory above the working directory (a
// test's package) holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// Tab is one tab of a Browser in a browser context of its own. Its
// methods fail the test it was made for when the browser does not answer;
// what a page says is for the test to judge.
type Tab struct {
	// Timeout bounds each action, and each wait (default 15 s).
	Timeout time.Duration

	t       testing.TB
	b       *Browser
	ctx     context.Context
	cancel  context.CancelFunc
	closing sync.Once
	logMu   sync.Mutex
	log     []string
}

// NewContext opens a tab in a new browser context: a fresh profile, with
// no cookies, cache or storage of any other tab, as a new incognito window
// would be. Its failures are t's; it closes when t ends.
func (b *Browser) NewContext(t testing.TB) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tab := &Tab{Timeout: 15 * time.Second, t: t, b: b, ctx: ctx, cancel: cancel}
	t.Cleanup(tab.Close)
	// Opening the tab is not bounded by a timeout's context: it would
	// close the tab when it ends.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(ctx) }()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("opening a tab: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("opening a tab: no answer in a minute")
	}
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			tab.logMu.Lock()
			tab.log = append(tab.log, fmt.Sprintf("%s %s: %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text))
			tab.logMu.Unlock()
		}
	}()
	return tab
}

// Log is what the browser logged about the tab's pages (DevTools' Log
// domain): refused requests, Content-Security-Policy violations, failed
// loads, each "level source: text".
func (tab *Tab) Log() []string {
	tab.logMu.Lock()
	defer tab.logMu.Unlock()
	return slices.Clone(tab.log)
}

// shows describes what the tab shows, for a failure's message.
func (tab *Tab) shows() string {
	url, text, err := tab.state()
	if err != nil {
		return fmt.Sprintf("%s (%v)", url, err)
	}
	s := fmt.Sprintf("%s:\n%s", url, text)
	if log := tab.Log(); len(log) > 0 {
		s += "\nthe browser logged:\n" + strings.Join(log[max(0, len(log)-5):], "\n")
	}
	return s
}

// Context is the tab's chromedp context, for actions the Tab has no
// method for: chromedp.Run(tab.Context(), ...).
func (tab *Tab) Context() context.Context { return tab.ctx }

// Close closes the tab and throws its browser context away.
func (tab *Tab) Close() { tab.closing.Do(tab.cancel) }

func (tab *Tab) bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(tab.ctx, tab.Timeout)
}

// Open navigates to url, waits for the page to load and returns the HTTP
// status of its document (after redirects; a page that then moves on by
// itself, as a meta refresh does, is WaitText's or WaitURL's to follow).
func (tab *Tab) Open(url string) int {
	tab.t.Helper()
	ctx, cancel := tab.bounded()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		tab.t.Fatalf("opening %s: %v; the tab shows %s", url, err, tab.shows())
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// state is the tab's URL and the text of its page, as a person reads it
// (document.body.innerText), or an error while a page is loading.
func (tab *Tab) state() (url, text string, err error) {
	ctx, cancel := context.WithTimeout(tab.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[[2]string](`[location.href, document.body ? document.body.innerText : ""]`))
	return s[0], s[1], err
}

// Wait waits until ok holds for the tab's URL and page text, and returns
// them; after Timeout it fails the test with what the tab last showed.
// what says what was awaited.
func (tab *Tab) Wait(what string, ok func(url, text string) bool) (url, text string) {
	tab.t.Helper()
	deadline := time.Now().Add(tab.Timeout)
	for {
		url, text, err := tab.state()
		if err == nil && ok(url, text) {
			return url, text
		}
		if time.Now().After(deadline) {
			tab.t.Fatalf("waited %s for %s; the tab shows %s", tab.Timeout, what, tab.shows())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitText waits until the page's text contains want and returns the text.
func (tab *Tab) WaitText(want string) string {
	tab.t.Helper()
	_, text := tab.Wait(fmt.Sprintf("the text %q", want), func(_, text string) bool { return strings.Contains(text, want) })
	return text
}

// WaitURL waits until the tab's URL starts with prefix and returns it.
func (tab *Tab) WaitURL(prefix string) string {
	tab.t.Helper()
	url, _ := tab.Wait("a URL starting "+prefix, func(url, _ string) bool { return strings.HasPrefix(url, prefix) })
	return url
}

// Text is the text of the page now shown.
func (tab *Tab) Text() string {
	tab.t.Helper()
	_, text := tab.Wait("a page to read", func(string, string) bool { return true })
	return text
}

// URL is the address the tab now shows.
func (tab *Tab) URL() string {
	tab.t.Helper()
	url, _ := tab.Wait("a page to read", func(string, string) bool { return true })
	return url
}

// Submit types each of fields' values into the field of that name, as a
// person would (key events), clicks the submit button of the form holding
// them, waits for the page it leads to and returns that page's HTTP status.
func (tab *Tab) Submit(fields map[string]string) int {
	tab.t.Helper()
	if len(fields) == 0 {
		tab.t.Fatal("Submit: no fields")
	}
	ctx, cancel := tab.bounded()
	defer cancel()
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("[name=%q]", name)), fields[name])); err != nil {
			tab.t.Fatalf("typing into the field %s: %v", name, err)
		}
	}
	button := chromedp.CSS(fmt.Sprintf("form:has([name=%q]) [type=submit]", names[0]))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(button))
	if err != nil {
		tab.t.Fatalf("submitting the form: %v; the tab shows %s", err, tab.shows())
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Cookies are the cookies the tab's browser context would send to urls
// (default: the page's own).
func (tab *Tab) Cookies(urls ...string) []*network.Cookie {
	tab.t.Helper()
	ctx, cancel := tab.bounded()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		tab.t.Fatalf("reading cookies: %v", err)
	}
	return res.Cookies
}

// Screenshot saves the whole page as name (".png" added when missing) in
// the Browser's Artifacts and returns its path.
func (tab *Tab) Screenshot(name string) string {
	tab.t.Helper()
	ctx, cancel := tab.bounded()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tab.t.Fatalf("screenshot %s: %v", name, err)
	}
	if !strings.HasSuffix(name, ".png") {
		name += ".png"
	}
	path := filepath.Join(tab.b.Artifacts, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tab.t.Fatal(err)
	}
	tab.t.Logf("screenshot: %s", path)
	return path
}

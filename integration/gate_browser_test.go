package integration

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"github.com/shipper-dev/shipper/internal/gate"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestGateInABrowser is issue 27's "tested in a real browser": Chromium
// (testenv.StartBrowser) in front of three real `shipper gate` processes
// of the app shop, behind one host-routing front standing in for the
// router: the production host shop.example.com, the app's login host, and
// the previews shop-1a2b3c4d and shop-5e6f7a8b, each gate in front of an
// app of its own that shows a random name and its commit. A person signs
// in once, with a wrong password first, and opens both previews; a share
// link opens one preview in a fresh browser until it expires. Screenshots
// land in testenv.ArtifactsDir (docs/development.md).
func TestGateInABrowser(t *testing.T) {
	testenv.RequireBrowser(t)
	const (
		password   = "correct-horse-battery"
		loginHost  = "shop.example.com"
		preview1   = "shop-1a2b3c4d.example.com"
		preview2   = "shop-5e6f7a8b.example.com"
		loginHopTo = "http://" + loginHost + gate.SSOPath + "?to="
	)
	apps := browserApps{
		loginHost: {sha: "0c0ffee0"},
		preview1:  {sha: "1a2b3c4d"},
		preview2:  {sha: "5e6f7a8b"},
	}
	// Production's host is public (only previews protected): its route
	// targets the gate's public listener, as production's does on the
	// cluster (docs/protection.md).
	routes := map[string]string{}
	for host, app := range apps {
		if host != loginHost {
			routes[host] = app.start(t, password, loginHost)
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		public := l.Addr().String()
		l.Close()
		app.start(t, password, loginHost, "--public-listen", public)
		waitListening(t, public)
		routes[host] = public
	}
	front := newHostFront(t, routes)
	b := testenv.StartBrowser(t, testenv.BrowserOptions{Resolve: map[string]string{"*.example.com": front.addr}})

	tab := b.NewContext(t)
	if code := tab.Open("http://" + preview1 + "/"); code != http.StatusUnauthorized {
		t.Errorf("preview 1 without a session: HTTP %d, want 401 (the login page)", code)
	}
	hop := tab.WaitURL(loginHopTo)
	if to, _ := url.Parse(hop); to.Query().Get("to") != "http://"+preview1+"/" {
		t.Errorf("the login page is at %s, want the login host's, back to preview 1", hop)
	}
	// The form is the login host's: it names the app and the preview it
	// opens (not the commit production runs).
	text := tab.WaitText("Password")
	for _, want := range []string{"This preview is protected", "App shop: sign in to open " + preview1 + "."} {
		if !strings.Contains(text, want) {
			t.Errorf("login page: no %q in\n%s", want, text)
		}
	}
	apps.notShown(t, "the login page", text)
	tab.Screenshot("login.png")

	if code := tab.Submit(map[string]string{"password": "not-the-password"}); code != http.StatusUnauthorized {
		t.Errorf("a wrong password: HTTP %d, want 401", code)
	}
	text = tab.Text()
	if !strings.Contains(text, "Wrong password.") || !strings.Contains(text, "Password") {
		t.Errorf("after a wrong password, want the form again saying so:\n%s", text)
	}
	apps.notShown(t, "the page after a wrong password", text)
	tab.Screenshot("wrong-password.png")

	if code := tab.Submit(map[string]string{"password": password}); code != http.StatusOK {
		t.Errorf("the right password: HTTP %d at the end of the hop, want 200", code)
	}
	url1, text := tab.Wait("preview 1's app", func(string, text string) bool { return strings.Contains(text, apps[preview1].name) })
	if url1 != "http://"+preview1+"/" || !strings.Contains(text, "commit 1a2b3c4d") || !strings.Contains(text, "gate cookie: none") {
		t.Errorf("after the login: %s shows\n%s\nwant preview 1's / with its commit, without the gate's cookie", url1, text)
	}
	tab.Screenshot("app.png")
	checkHostOnly(t, tab.Cookies("http://"+preview1+"/"), preview1)
	if cs := tab.Cookies("http://" + preview2 + "/"); len(cs) != 0 {
		t.Errorf("preview 2 would get cookies before its own sign-in: %v", cs)
	}

	mark := front.mark()
	if code := tab.Open("http://" + preview2 + "/"); code != http.StatusUnauthorized {
		t.Errorf("preview 2 at first: HTTP %d, want 401 (then the hop to the login host)", code)
	}
	url2, text := tab.Wait("preview 2's app", func(string, text string) bool { return strings.Contains(text, apps[preview2].name) })
	if url2 != "http://"+preview2+"/" || !strings.Contains(text, "commit 5e6f7a8b") {
		t.Errorf("preview 2 after the hop: %s shows\n%s", url2, text)
	}
	seen := front.since(mark)
	for _, want := range []string{"GET " + loginHost + gate.SSOPath, "GET " + preview2 + gate.TicketPath} {
		if !strings.Contains(seen, want) {
			t.Errorf("preview 2 opened without the single sign-on hop (no %q); requests:\n%s", want, seen)
		}
	}
	if strings.Contains(seen, "POST") {
		t.Errorf("preview 2 asked for a password again; requests:\n%s", seen)
	}
	checkHostOnly(t, tab.Cookies("http://"+preview2+"/"), preview2)

	// A share link, in browsers that never signed in.
	key, err := base64.StdEncoding.DecodeString(testGateKey)
	if err != nil {
		t.Fatal(err)
	}
	shared, late := b.NewContext(t), b.NewContext(t) // before the link's short life starts
	expiry := time.Now().Add(5 * time.Second)
	link := "http://" + preview2 + "/?" + gate.ShareParam + "=" + gate.ShareToken(key, "shop", "5e6f7a8b", expiry)
	if code := shared.Open(link); code != http.StatusOK {
		t.Errorf("a share link in a fresh browser: HTTP %d, want 200", code)
	}
	if u := shared.URL(); u != "http://"+preview2+"/" || !strings.Contains(shared.Text(), apps[preview2].name) {
		t.Errorf("a share link in a fresh browser shows %s:\n%s\nwant preview 2's app, the token out of the address", u, shared.Text())
	}
	shared.Screenshot("share.png")
	// Its cookie is preview 2's alone: preview 1 still asks for a login.
	shared.Open("http://" + preview1 + "/")
	shared.WaitURL(loginHopTo)
	apps.notShown(t, "preview 1 with preview 2's share link", shared.WaitText("Password"))

	time.Sleep(time.Until(expiry) + time.Second)
	if code := late.Open(link); code != http.StatusForbidden {
		t.Errorf("an expired share link: HTTP %d, want 403", code)
	}
	text = late.Text()
	for _, want := range []string{"This share link is not valid, or it has expired.", "App shop, commit 5e6f7a8b."} {
		if !strings.Contains(text, want) {
			t.Errorf("an expired share link: no %q in\n%s", want, text)
		}
	}
	apps.notShown(t, "an expired share link", text)
	late.Screenshot("share-expired.png")
	shared.Open("http://" + preview2 + "/")
	apps.notShown(t, "preview 2 once its share link has expired, in the browser it opened", shared.WaitText("Password"))

	t.Run("production host is public", func(t *testing.T) {
		anyone := b.NewContext(t)
		if code := anyone.Open("http://" + loginHost + "/"); code != http.StatusOK {
			t.Errorf("production's public host in a fresh browser: HTTP %d, want 200", code)
		}
		if text := anyone.Text(); !strings.Contains(text, apps[loginHost].name) || !strings.Contains(text, "commit 0c0ffee0") {
			t.Errorf("production's public host shows\n%s\nwant its app", text)
		}
		anyone.Screenshot("production.png")
		anyone.Open("http://" + preview1 + "/")
		anyone.WaitURL(loginHopTo)
		apps.notShown(t, "a preview after production's public host", anyone.WaitText("Password"))
	})
}

// browserApp is one of TestGateInABrowser's hosts: an app that shows a
// random name and its commit, behind a `shipper gate` of the app shop.
type browserApp struct {
	sha, name string
}

// start runs the app and its gate; the gate's address is returned.
func (a *browserApp) start(t *testing.T, password, loginHost string, extra ...string) string {
	a.name = "shop " + rand.Text()[:10]
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen := "none"
		for _, c := range r.Cookies() {
			if strings.Contains(c.Name, "shipper") {
				seen = c.Name
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%[1]s</title><h1>%[1]s</h1><p>commit %[2]s</p><p>gate cookie: %[3]s</p>",
			html.EscapeString(a.name), a.sha, html.EscapeString(seen))
	}))
	t.Cleanup(app.Close)
	var stderr strings.Builder // read after Wait only
	cmd, addr := startGateArgs(t, &stderr, []string{gate.PasswordVar + "=" + password},
		append([]string{"--app", "shop", "--sha", a.sha, "--upstream", app.URL, "--login-host", loginHost, "--domain", "example.com"}, extra...)...)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.String() != "" {
			t.Logf("gate %s's stderr:\n%s", a.sha, stderr.String())
		}
	})
	waitListening(t, addr)
	return addr
}

type browserApps map[string]*browserApp

// notShown fails t if page shows any app.
func (apps browserApps) notShown(t *testing.T, page, text string) {
	t.Helper()
	for host, a := range apps {
		if strings.Contains(text, a.name) {
			t.Errorf("%s shows the app of %s:\n%s", page, host, text)
		}
	}
}

// checkHostOnly fails t unless cookies hold the gate's session cookie for
// host alone: host-only (Chromium reports a Domain cookie with a leading
// dot), HttpOnly and SameSite=Lax.
func checkHostOnly(t *testing.T, cookies []*network.Cookie, host string) {
	t.Helper()
	for _, c := range cookies {
		if c.Name == "shipper-gate" {
			if c.Domain != host || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
				t.Errorf("the gate's cookie on %s: domain %q, HttpOnly %v, SameSite %q; want host-only, HttpOnly, Lax", host, c.Domain, c.HTTPOnly, c.SameSite)
			}
			return
		}
	}
	t.Errorf("no gate cookie for %s in %d cookies", host, len(cookies))
}

// waitListening waits until something accepts connections on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no gate listens on %s: %v (its stderr follows at the end)", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostFront is the router of TestGateInABrowser: one port, a reverse
// proxy to the gate of each request's Host, and a log of what it served.
type hostFront struct {
	addr string
	mu   sync.Mutex
	log  []string
}

func newHostFront(t *testing.T, routes map[string]string) *hostFront {
	f := &hostFront{}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(&url.URL{Scheme: "http", Host: routes[r.In.Host]})
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, r.Method+" "+r.Host+r.URL.Path)
		f.mu.Unlock()
		if routes[r.Host] == "" {
			http.Error(w, "no route to "+r.Host, http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("the front served:\n%s", f.since(0))
		}
	})
	f.addr = srv.Listener.Addr().String()
	return f
}

// mark is the log's length now; since(mark) is what came after, a line
// a request.
func (f *hostFront) mark() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.log)
}

func (f *hostFront) since(mark int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.log[mark:], "\n")
}

//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// protect deploys a protected preview on the real node, its pod running
// the app and shipper-gate from the job image (`make image`), and checks
// it the way a user and a pipeline see it through Traefik: plain curl gets
// 401 and the login page, the automation bypass header the app, a login
// with the password a session cookie that opens it; production, once
// promoted, opens without a login (--protect previews).
func protect(t *testing.T, base *cluster) {
	const (
		password = "e2e-preview-password-1234"
		bypass   = "e2e-automation-bypass-5678"
	)
	jobImage := base.jobImage(t)
	c := *base
	c.app = "hello-prot"
	c.extra = append(append([]string{}, base.extra...), "CI_PROJECT_NAME="+c.app, "CI_PROJECT_PATH=demo/"+c.app,
		"CI_REGISTRY_IMAGE="+c.env.Registry.Repository("demo/"+c.app),
		"SHIPPER_PROTECT=previews", "SHIPPER_GATE_IMAGE="+jobImage,
		"SHIPPER_PREVIEW_PASSWORD="+password, "SHIPPER_PROTECTION_BYPASS="+bypass)
	sha := "c0ffee00d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6"
	c.run(t, sha, "package")
	host := strings.TrimPrefix(c.run(t, sha, "deploy"), "http://")

	// Traefik serves a new Ingress a moment after deploy returns (this
	// part deploys without --verify): until then it answers 404.
	c.eventually(t, host, "/version", http.StatusUnauthorized, "")
	code, body, _ := c.request(host, "/version", nil, nil)
	say(t, "\n$ curl -H 'Host: %s' http://%s/version\n%d (the login page: %q)", host, c.addr(), code, firstLine(body, "This preview is protected"))
	if code != http.StatusUnauthorized || !strings.Contains(body, "This preview is protected") || !strings.Contains(body, c.app) {
		t.Fatalf("a plain request to the protected preview answered %d %q, want 401 and the login page", code, body)
	}
	code, body, _ = c.request(host, "/version", http.Header{"X-Shipper-Bypass": {bypass}}, nil)
	say(t, "\n$ curl -H 'Host: %s' -H 'X-Shipper-Bypass: $SHIPPER_PROTECTION_BYPASS' http://%s/version\n%d %s", host, c.addr(), code, body)
	if code != http.StatusOK || body != sha[:8] {
		t.Fatalf("with the bypass header: %d %q, want 200 %s", code, body, sha[:8])
	}
	if code, _, _ := c.request(host, "/version", http.Header{"X-Shipper-Bypass": {"wrong-" + bypass}}, nil); code != http.StatusUnauthorized {
		t.Errorf("a wrong bypass answered %d, want 401", code)
	}

	// A login: the password POSTed to the gate, then its cookie.
	form := url.Values{"password": {password}, "next": {"/version"}}
	code, _, resp := c.request(host, "/_shipper/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
	if code != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("the login answered %d with cookies %v, want 303 and one HttpOnly session cookie", code, resp.Cookies())
	}
	cookie := resp.Cookies()[0]
	code, body, _ = c.request(host, "/version", http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}, nil)
	if code != http.StatusOK || body != sha[:8] {
		t.Fatalf("with the session cookie: %d %q, want the app", code, body)
	}
	form.Set("password", "wrong")
	if code, body, _ := c.request(host, "/_shipper/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode())); code != http.StatusUnauthorized || !strings.Contains(body, "Wrong password") {
		t.Errorf("a wrong password answered %d, want 401 and the login page saying so", code)
	}

	// Production is public (--protect previews): the same pod answers its
	// host without a login, on the gate's public listener.
	prod := strings.TrimPrefix(c.run(t, sha, "promote"), "http://")
	c.eventually(t, prod, "/version", 200, sha[:8])
	c.curl(t, prod, "/version")
	c.run(t, sha, "list")
	protectInABrowser(t, &c, password, prod)
}

// protectInABrowser is the protected previews in headless Chromium on the
// real node: two more commits, deployed once production is there (its
// host is their login host). The login page appears on one, a wrong
// password is refused, the right one lands on the app, the other opens
// without a second login; a share link opens it in a fresh browser until
// it expires; production opens without a login. Screenshots land in the
// test's artifacts (testenv.ArtifactsDir).
func protectInABrowser(t *testing.T, c *cluster, password, prod string) {
	shaB, shaC := "c1c1c1c1d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6", "c2c2c2c2d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6"
	c.run(t, shaB, "package")
	hostB := strings.TrimPrefix(c.run(t, shaB, "deploy"), "http://")
	c.run(t, shaC, "package")
	hostC := strings.TrimPrefix(c.run(t, shaC, "deploy"), "http://")
	c.eventually(t, hostB, "/version", http.StatusUnauthorized, "")
	c.eventually(t, hostC, "/version", http.StatusUnauthorized, "")
	b := testenv.StartBrowser(t, testenv.BrowserOptions{Resolve: map[string]string{"*." + c.router.domain: c.addr()}})

	tab := b.NewContext(t)
	if code := tab.Open("http://" + hostB + "/"); code != http.StatusUnauthorized {
		t.Errorf("preview B in a browser: HTTP %d, want 401 (the login page)", code)
	}
	text := tab.WaitText("Password")
	if !strings.Contains(text, "This preview is protected") || strings.Contains(text, "_") {
		t.Errorf("the login page shows\n%s\nwant it to say it is protected, and no app", text)
	}
	tab.Screenshot("login.png")
	say(t, "\nChromium, http://%s/: %q", hostB, firstLine(text, "This preview is protected"))
	if code := tab.Submit(map[string]string{"password": "not-" + password}); code != http.StatusUnauthorized || !strings.Contains(tab.Text(), "Wrong password.") {
		t.Errorf("a wrong password: HTTP %d, want 401 saying so", code)
	}
	tab.Submit(map[string]string{"password": password})
	url, text := tab.Wait("preview B's app", func(url, text string) bool {
		return strings.HasPrefix(url, "http://"+hostB+"/") && strings.Contains(text, "_")
	})
	tab.Screenshot("app.png")
	say(t, "Chromium, the right password: %s shows %q", url, text)
	if code := tab.Open("http://" + hostB + "/version"); code != http.StatusOK || strings.TrimSpace(tab.Text()) != shaB[:8] {
		t.Errorf("preview B's /version after the login: HTTP %d %q", code, tab.Text())
	}
	// The other preview: the login page hops to production's host, where
	// the session is, and back with a ticket: no second login.
	tab.Open("http://" + hostC + "/version")
	if _, text := tab.Wait("preview C without a second login", func(url, text string) bool {
		return strings.HasPrefix(url, "http://"+hostC+"/") && strings.TrimSpace(text) == shaC[:8]
	}); strings.TrimSpace(text) != shaC[:8] {
		t.Errorf("preview C shows %q", text)
	}
	say(t, "Chromium, preview C after B's login: no second login, /version %s", shaC[:8])

	link := c.run(t, shaC, "share", "--ttl", "20s")
	shared := b.NewContext(t)
	if code := shared.Open(link); code != http.StatusOK || !strings.Contains(shared.Text(), "_") {
		t.Errorf("a share link in a fresh browser: HTTP %d %q, want preview C's app", code, shared.Text())
	}
	if u := shared.URL(); strings.Contains(u, "shipper-share") {
		t.Errorf("the share link's token stayed in the address: %s", u)
	}
	time.Sleep(21 * time.Second)
	late := b.NewContext(t)
	if code := late.Open(link); code != http.StatusForbidden || !strings.Contains(late.Text(), "expired") {
		t.Errorf("an expired share link: HTTP %d %q, want 403", code, late.Text())
	}
	say(t, "Chromium, a share link of 20 s: opens preview C in a fresh browser, then 403 once expired")

	anyone := b.NewContext(t)
	if code := anyone.Open("http://" + prod + "/version"); code != http.StatusOK {
		t.Errorf("production in a fresh browser: HTTP %d, want 200 without a login", code)
	}
	anyone.Screenshot("production.png")
}

// request sends method GET (POST with a body) for path to host through
// Traefik with header, without following redirects.
func (c *cluster) request(host, path string, header http.Header, body *strings.Reader) (int, string, *http.Response) {
	method := http.MethodGet
	var req *http.Request
	if body != nil {
		method = http.MethodPost
		req, _ = http.NewRequest(method, "http://"+c.addr()+path, body)
	} else {
		req, _ = http.NewRequest(method, "http://"+c.addr()+path, nil)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String()), resp
}

// firstLine is want when body holds it, else body's first 80 bytes.
func firstLine(body, want string) string {
	if strings.Contains(body, want) {
		return want
	}
	return body[:min(80, len(body))]
}

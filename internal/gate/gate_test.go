package gate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// upstream is the app: it answers with what it saw of the request.
func upstream(t *testing.T) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app "+r.URL.RequestURI()+" cookie="+r.Header.Get("Cookie")+" bypass="+r.Header.Get(BypassHeader))
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newGate(t *testing.T, up *url.URL, clk *clock, mod func(*Config)) *Gate {
	t.Helper()
	cfg := Config{App: "shop", SHA: "1a2b3c4d5e6f", Upstream: up, Key: testKey, Password: "hunter2-correct", Bypass: "automation-secret-0123456789", Secure: true, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// do sends a request to g as a browser on host would, with cookies.
func do(g http.Handler, method, target string, body url.Values, header http.Header, cookies ...*http.Cookie) *http.Response {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.RemoteAddr = "10.244.0.9:41000"
	for k, v := range header {
		r.Header[k] = v
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w.Result()
}

func text(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-shipper-gate" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return nil
}

func login(t *testing.T, g http.Handler, password string) *http.Response {
	t.Helper()
	return do(g, http.MethodPost, "https://shop-1a2b3c4d.example.com"+LoginPath, url.Values{"password": {password}, "next": {"/cart?id=1"}}, nil)
}

func TestALoginOpensEveryPreviewOfTheApp(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)

	resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/secret", nil, nil)
	body := text(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "This preview is protected") ||
		!strings.Contains(body, "<code>shop</code>") || !strings.Contains(body, "<code>1a2b3c4d</code>") || strings.Contains(body, "app /secret") {
		t.Fatalf("without a session: %d %q, want 401 and the login page, not the app", resp.StatusCode, body)
	}
	if resp := login(t, g, "wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(text(t, resp), "Wrong password") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong password: %d, cookies %v; want 401, none", resp.StatusCode, resp.Cookies())
	}
	resp = login(t, g, "hunter2-correct")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cart?id=1" {
		t.Fatalf("right password: %d to %q, want 303 to /cart?id=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := sessionCookie(t, resp)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || c.Path != "/" || c.MaxAge != 12*3600 {
		t.Errorf("cookie %+v: want HttpOnly, Secure, SameSite=Lax, host-only, path /, 12 h", c)
	}
	other := &http.Cookie{Name: "app-session", Value: "kept"}
	resp = do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/secret", nil, nil, c, other)
	if body := text(t, resp); resp.StatusCode != http.StatusOK || body != "app /secret cookie=app-session=kept bypass=" {
		t.Errorf("with the session: %d %q; want the app, seeing its own cookie and not the gate's", resp.StatusCode, body)
	}
	// Another preview's gate of the same app takes the app's session (the
	// browser gets one there through the login host: TestSingleSignOn);
	// another app's gate refuses it.
	second := newGate(t, up, clk, func(c *Config) { c.SHA = "9f8e7d6c5b4a" })
	if resp := do(second, http.MethodGet, "https://shop-9f8e7d6c.example.com/", nil, nil, c); resp.StatusCode != http.StatusOK {
		t.Errorf("a second preview of the app: %d, want 200", resp.StatusCode)
	}
	otherApp := newGate(t, up, clk, func(c *Config) { c.App = "blog" })
	if resp := do(otherApp, http.MethodGet, "https://blog-1a2b3c4d.example.com/", nil, nil, c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another app with shop's cookie: %d, want 401", resp.StatusCode)
	}
}

func TestASessionEnds(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)
	c := sessionCookie(t, login(t, g, "hunter2-correct"))
	get := func(g http.Handler, c *http.Cookie) int {
		return do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/", nil, nil, c).StatusCode
	}
	if got := get(g, c); got != http.StatusOK {
		t.Fatalf("fresh session: %d", got)
	}
	tampered := *c
	tampered.Value = strings.Replace(c.Value, "v1.a.", "v1.c.", 1)
	forged := *c
	forged.Value = c.Value[:len(c.Value)-2] + "AA"
	longer := *c
	parts := strings.Split(c.Value, ".")
	longer.Value = strings.Join([]string{parts[0], parts[1], "zzzzzzz", parts[3]}, ".")
	for name, bad := range map[string]*http.Cookie{"kind changed": &tampered, "MAC changed": &forged, "expiry extended": &longer} {
		if got := get(g, bad); got != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, got)
		}
	}
	if got := get(newGate(t, up, clk, func(c *Config) { c.Password = "new-password" }), c); got != http.StatusUnauthorized {
		t.Errorf("after the password changed: %d, want 401", got)
	}
	if got := get(newGate(t, up, clk, func(c *Config) { c.Key = []byte("another-key-0123456789abcdef0123") }), c); got != http.StatusUnauthorized {
		t.Errorf("after the key was rotated: %d, want 401", got)
	}
	clk.now = clk.now.Add(12*time.Hour + time.Second)
	if got := get(g, c); got != http.StatusUnauthorized {
		t.Errorf("after 12 h: %d, want 401", got)
	}
}

func TestBypassForAutomation(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)
	resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/api", nil, http.Header{BypassHeader: {"automation-secret-0123456789"}})
	if body := text(t, resp); resp.StatusCode != http.StatusOK || body != "app /api cookie= bypass=" {
		t.Errorf("with the bypass: %d %q; want the app, not seeing the secret", resp.StatusCode, body)
	}
	for _, wrong := range []string{"automation-secret-012345678", "x", "automation-secret-0123456789 "} {
		if resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/api", nil, http.Header{BypassHeader: {wrong}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("bypass %q: %d, want 401", wrong, resp.StatusCode)
		}
	}
	none := newGate(t, up, clk, func(c *Config) { c.Bypass = "" })
	if resp := do(none, http.MethodGet, "https://shop-1a2b3c4d.example.com/api", nil, http.Header{BypassHeader: {""}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no bypass configured, empty header: %d, want 401", resp.StatusCode)
	}
}

func TestShareLinks(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, func(c *Config) { c.Password = "" }) // no password at all
	token := ShareToken(testKey, "shop", "1a2b3c4d5e6f", clk.now.Add(24*time.Hour))
	resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/page?x=1&"+ShareParam+"="+token, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/page?x=1" {
		t.Fatalf("share link: %d to %q, want 303 to /page?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := sessionCookie(t, resp)
	if resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/page?x=1", nil, nil, c); resp.StatusCode != http.StatusOK {
		t.Errorf("after the share link: %d, want the app", resp.StatusCode)
	}
	second := newGate(t, up, clk, func(c *Config) { c.SHA = "9f8e7d6c5b4a" })
	if resp := do(second, http.MethodGet, "https://shop-9f8e7d6c.example.com/", nil, nil, c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a share link's session on another commit's preview: %d, want 401", resp.StatusCode)
	}
	if resp := do(second, http.MethodGet, "https://shop-9f8e7d6c.example.com/?"+ShareParam+"="+token, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the link on another commit's preview: %d, want 403", resp.StatusCode)
	}
	rotated := newGate(t, up, clk, func(c *Config) { c.Key = []byte("another-key-0123456789abcdef0123") })
	if resp := do(rotated, http.MethodGet, "https://shop-1a2b3c4d.example.com/?"+ShareParam+"="+token, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the link after the key was rotated: %d, want 403", resp.StatusCode)
	}
	clk.now = clk.now.Add(24 * time.Hour)
	if resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/?"+ShareParam+"="+token, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an expired link: %d, want 403", resp.StatusCode)
	}
	if resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/", nil, nil, c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the link's session after the link expired: %d, want 401", resp.StatusCode)
	}
}

func TestLoginAttemptsAreLimited(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)
	from := func(ip, password string) int {
		return do(g, http.MethodPost, "https://shop-1a2b3c4d.example.com"+LoginPath, url.Values{"password": {password}},
			http.Header{"X-Forwarded-For": {"203.0.113.7, " + ip}}).StatusCode
	}
	for i := 0; i < clientBurst; i++ {
		if got := from("198.51.100.1", "guess"); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, got)
		}
	}
	if got := from("198.51.100.1", "hunter2-correct"); got != http.StatusTooManyRequests {
		t.Errorf("the right password after %d wrong ones: %d, want 429", clientBurst, got)
	}
	if got := from("198.51.100.2", "hunter2-correct"); got != http.StatusSeeOther {
		t.Errorf("another client: %d, want 303", got)
	}
	clk.now = clk.now.Add(clientEvery)
	if got := from("198.51.100.1", "hunter2-correct"); got != http.StatusSeeOther {
		t.Errorf("after %v: %d, want 303", clientEvery, got)
	}
	// Every client together: the app's bucket.
	n := 0
	for i := 0; i < 2*appBurst && from("192.0.2."+string(rune('0'+i%10))+string(rune('0'+i/10%10))+string(rune('0'+i/100)), "guess") != http.StatusTooManyRequests; i++ {
		n++
	}
	if n > appBurst {
		t.Errorf("%d attempts from many clients before 429, want at most %d", n, appBurst)
	}
}

func TestLoginRedirectsOnlyToThisHost(t *testing.T) {
	for next, want := range map[string]string{
		"/cart": "/cart", "//evil.example/": "/", "/\\evil.example": "/", "https://evil.example/": "/", "": "/", "cart": "/", "/a\r\nSet-Cookie: x=1": "/",
	} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
}

package gate

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// The sign-in with a provider is tested against a real one (zitadel's
// OpenID Connect provider, testenv.StartOIDC) by a Go client that acts as
// a browser: a cookie jar, redirects followed, the provider's login form
// filled in. Every *.example.com host is the gates' server.

const (
	loginHost   = "shop.example.com"
	previewHost = "shop-1a2b3c4d.example.com"
	userPass    = "correct-horse-battery"
)

var oidcUsers = []testenv.OIDCUser{
	{Name: "alice", Password: userPass, Groups: []string{"acme/previews"}},                              // direct member
	{Name: "carol", Password: userPass, Groups: []string{"acme"}, Inherited: []string{"acme/previews"}}, // through the parent group
	{Name: "bob", Password: userPass, Groups: []string{"acme/other", "previews"}},                       // not a member
}

// oidcEnv is a provider, the app's production gate on its login host and
// one preview's gate, served on one loopback address.
type oidcEnv struct {
	t        *testing.T
	provider *testenv.OIDCProvider
	addr     string
	log      *syncBuffer
	browsers []*browser
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var sharedProvider struct {
	once sync.Once
	p    *testenv.OIDCProvider
	err  error
}

// provider is one provider for the test binary, whose client may return
// to either host's callback.
func provider(t *testing.T) *testenv.OIDCProvider {
	t.Helper()
	sharedProvider.once.Do(func() {
		sharedProvider.p, sharedProvider.err = testenv.StartOIDC([]string{
			"http://" + loginHost + OIDCCallbackPath, "http://" + previewHost + OIDCCallbackPath,
		}, oidcUsers...)
	})
	if sharedProvider.err != nil {
		t.Fatal(sharedProvider.err)
	}
	return sharedProvider.p
}

// newOIDCEnv starts the gates with mod applied to both configs (after the
// defaults: login host, groups acme/previews). At the end no response and
// no line of the gates' log may hold the client secret.
func newOIDCEnv(t *testing.T, mod func(*Config)) *oidcEnv {
	t.Helper()
	p := provider(t)
	e := &oidcEnv{t: t, provider: p, log: &syncBuffer{}}
	up := upstream(t)
	gates := map[string]http.Handler{}
	for host, sha := range map[string]string{loginHost: "0000aaaa1111", previewHost: "1a2b3c4d5e6f"} {
		cfg := Config{
			App: "shop", SHA: sha, Upstream: up, Key: testKey, Password: "hunter2-correct",
			LoginHost: loginHost, Domain: "example.com", Log: slog.New(slog.NewTextHandler(e.log, nil)),
			OIDC: &OIDC{Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Name: "GitLab", Groups: []string{"acme/previews"}},
		}
		if mod != nil {
			mod(&cfg)
		}
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gates[host] = g
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g, ok := gates[r.Host]; ok {
			g.ServeHTTP(w, r)
			return
		}
		http.Error(w, "no such host", http.StatusMisdirectedRequest)
	}))
	t.Cleanup(srv.Close)
	e.addr = srv.Listener.Addr().String()
	t.Cleanup(func() {
		for _, b := range e.browsers {
			if strings.Contains(b.seen.String(), p.ClientSecret) {
				t.Errorf("the client secret reached the browser")
			}
		}
		if strings.Contains(e.log.String(), p.ClientSecret) {
			t.Errorf("the client secret is in the gate's log:\n%s", e.log)
		}
	})
	return e
}

// browser is an http.Client acting as one. stop, when set, ends a chain
// of redirects before the request it matches (whose response is then the
// redirect itself).
type browser struct {
	t    *testing.T
	c    *http.Client
	jar  *cookiejar.Jar
	stop func(*url.URL) bool
	seen syncBuffer // every response's status line, header and body
}

func (e *oidcEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, jar: jar}
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".example.com") {
			addr = e.addr
		}
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: recorder{tr, &b.seen}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stop != nil && b.stop(req.URL) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 15 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	e.browsers = append(e.browsers, b)
	return b
}

// recorder keeps a copy of every response.
type recorder struct {
	next http.RoundTripper
	to   io.Writer
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	dump, _ := httputil.DumpResponse(resp, false)
	r.to.Write(dump)
	r.to.Write(body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// page is one response, read.
type page struct {
	status int
	url    *url.URL // where the browser ended
	body   string
	resp   *http.Response
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Request.URL, string(body), resp}
}

func (b *browser) get(target string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(target string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	refreshURL = regexp.MustCompile(`content="0;url=([^"]+)"`)
	buttonURL  = regexp.MustCompile(`id="oidc" href="([^"]+)"`)
	formID     = regexp.MustCompile(`name="id" value="([^"]+)"`)
)

// value is the first group of re in p's body, unescaped.
func (p page) value(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: %d, no %s in %q", p.url, p.status, re, p.body)
	}
	return html.UnescapeString(m[1])
}

// attr is value, a link resolved against p's URL.
func (p page) attr(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	u, err := p.url.Parse(p.value(t, re))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// toProvider opens target as a browser without a session would, follows
// the hop to the login host and its "Sign in with GitLab" button: it ends
// on the provider's login form.
func (b *browser) toProvider(target string) page {
	b.t.Helper()
	p := b.get(target)
	if p.url.Host != loginHost {
		if p.status != http.StatusUnauthorized {
			b.t.Fatalf("%s: %d, want 401", target, p.status)
		}
		if refreshURL.MatchString(p.body) {
			p = b.get(p.attr(b.t, refreshURL))
		}
	}
	if !strings.Contains(p.body, ">Sign in with GitLab</a>") {
		b.t.Fatalf("%s: no button to sign in with GitLab in %q", p.url, p.body)
	}
	return b.get(p.attr(b.t, buttonURL))
}

// signIn fills in the provider's login form on p as user.
func (b *browser) signIn(p page, user string) page {
	b.t.Helper()
	if !strings.Contains(p.body, `name="username"`) {
		b.t.Fatalf("%s: %d, not the provider's login form: %q", p.url, p.status, p.body)
	}
	action, _ := p.url.Parse("/login/username")
	return b.post(action.String(), url.Values{"username": {user}, "password": {userPass}, "id": {p.value(b.t, formID)}})
}

func TestOIDCLetsInMembersOfTheGroups(t *testing.T) {
	e := newOIDCEnv(t, nil)
	for _, tc := range []struct {
		user   string
		status int
	}{
		{"alice", http.StatusOK},      // groups_direct, in the ID token
		{"carol", http.StatusOK},      // groups, from userinfo
		{"bob", http.StatusForbidden}, // in neither
	} {
		t.Run(tc.user, func(t *testing.T) {
			b := e.browser(t)
			got := b.signIn(b.toProvider("http://"+previewHost+"/page?x=1"), tc.user)
			if got.status != tc.status {
				t.Fatalf("after signing in at the provider: %s %d %q, want %d", got.url, got.status, got.body, tc.status)
			}
			again := b.get("http://" + previewHost + "/other")
			if tc.status == http.StatusOK {
				if got.url.String() != "http://"+previewHost+"/page?x=1" || !strings.HasPrefix(got.body, "app /page?x=1 cookie= ") {
					t.Errorf("landed on %s with %q, want the app's /page?x=1 on the preview, without the gate's cookies", got.url, got.body)
				}
				if again.status != http.StatusOK {
					t.Errorf("the preview afterwards: %d, want the app", again.status)
				}
				return
			}
			if !strings.Contains(got.body, "This preview is protected") || !strings.Contains(got.body, "who is not in a group allowed to see this preview") ||
				!strings.Contains(got.body, "bob") || got.url.Host != loginHost {
				t.Errorf("non-member: %s %q, want the login host's login page saying why", got.url, got.body)
			}
			if again.status != http.StatusUnauthorized {
				t.Errorf("the preview after a non-member's sign-in: %d, want 401", again.status)
			}
		})
	}
	if !strings.Contains(e.log.String(), "user=alice") || !strings.Contains(e.log.String(), "non-member refused") {
		t.Errorf("the gate's log names neither who signed in nor who was refused:\n%s", e.log)
	}
}

// TestOIDCOnTheHostItself: without a login host the preview's own host
// takes the provider's answer.
func TestOIDCOnTheHostItself(t *testing.T) {
	e := newOIDCEnv(t, func(c *Config) { c.LoginHost, c.Password = "", "" })
	b := e.browser(t)
	p := b.get("http://" + previewHost + "/page")
	if p.status != http.StatusUnauthorized || strings.Contains(p.body, `name="password"`) || strings.Contains(p.body, "share link") {
		t.Fatalf("login page without a password: %d %q, want 401 with the button alone", p.status, p.body)
	}
	got := b.signIn(b.get(p.attr(t, buttonURL)), "alice")
	if got.status != http.StatusOK || got.url.String() != "http://"+previewHost+"/page" {
		t.Errorf("after signing in: %s %d %q, want the app's /page", got.url, got.status, got.body)
	}
}

// callback signs in as alice in b, stopping at the provider's redirect to
// the gate's callback, which it returns.
func (b *browser) callback(target string) string {
	b.t.Helper()
	b.stop = func(u *url.URL) bool { return u.Path == OIDCCallbackPath }
	defer func() { b.stop = nil }()
	p := b.signIn(b.toProvider(target), "alice")
	loc := p.resp.Header.Get("Location")
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || !strings.Contains(loc, OIDCCallbackPath) {
		b.t.Fatalf("provider's answer: %d to %q, want a redirect to the callback", p.status, loc)
	}
	return loc
}

func (b *browser) stateCookie() *http.Cookie {
	for _, c := range b.jar.Cookies(&url.URL{Scheme: "http", Host: loginHost, Path: "/"}) {
		if c.Name == oidcCookieName {
			return c
		}
	}
	return nil
}

func TestOIDCRefusesForgedAndReplayedCallbacks(t *testing.T) {
	e := newOIDCEnv(t, nil)
	target := "http://" + previewHost + "/page"
	refused := func(t *testing.T, b *browser, p page, why string) {
		t.Helper()
		if p.status != http.StatusForbidden || !strings.Contains(p.body, why) {
			t.Errorf("%s: %d %q, want 403 saying %q", p.url, p.status, p.body, why)
		}
		if p := b.get(target); p.status != http.StatusUnauthorized {
			t.Errorf("the preview afterwards: %d, want 401", p.status)
		}
	}
	const expired = "This sign-in has expired or was already used"

	t.Run("tampered state", func(t *testing.T) {
		b := e.browser(t)
		cb, _ := url.Parse(b.callback(target))
		q := cb.Query()
		q.Set("state", q.Get("state")[1:]+"A")
		cb.RawQuery = q.Encode()
		refused(t, b, b.get(cb.String()), expired)
	})
	t.Run("tampered state cookie", func(t *testing.T) {
		b := e.browser(t)
		cb := b.callback(target)
		c := b.stateCookie()
		if c == nil {
			t.Fatal("no state cookie after the start")
		}
		// Another page to go to after, under the same MAC.
		payload, mac, _ := strings.Cut(c.Value, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(payload)
		raw = bytes.Replace(raw, []byte(`"next":"/_shipper/sso`), []byte(`"next":"//evil.example.net/`), 1)
		c.Value = base64.RawURLEncoding.EncodeToString(raw) + "." + mac
		b.jar.SetCookies(&url.URL{Scheme: "http", Host: loginHost}, []*http.Cookie{c})
		refused(t, b, b.get(cb), expired)
	})
	t.Run("another browser's callback", func(t *testing.T) {
		cb := e.browser(t).callback(target)
		b := e.browser(t) // login CSRF: a victim sent the attacker's callback
		refused(t, b, b.get(cb), expired)
	})
	t.Run("no nonce", func(t *testing.T) {
		b := e.browser(t)
		b.stop = func(u *url.URL) bool { return u.Host == strings.TrimPrefix(e.provider.Issuer, "http://") }
		p := b.toProvider(target)
		b.stop = nil
		auth, _ := url.Parse(p.resp.Header.Get("Location"))
		q := auth.Query()
		if q.Get("nonce") == "" || q.Get("state") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			t.Fatalf("authorization request %s: want state, nonce and an S256 challenge", auth)
		}
		q.Del("nonce")
		auth.RawQuery = q.Encode()
		refused(t, b, b.signIn(b.get(auth.String()), "alice"), "could not be checked")
		if !strings.Contains(e.log.String(), "nonce") {
			t.Errorf("the gate's log does not say why:\n%s", e.log)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := e.browser(t)
		cb := b.callback(target)
		c := b.stateCookie()
		if p := b.get(cb); p.status != http.StatusOK || p.url.Host != previewHost {
			t.Fatalf("the callback: %s %d, want the app", p.url, p.status)
		}
		if b.stateCookie() != nil {
			t.Errorf("the state cookie outlived its callback")
		}
		if p := b.get(cb); p.status != http.StatusForbidden {
			t.Errorf("the callback again: %d, want 403", p.status)
		}
		thief := e.browser(t) // with the cookie too
		thief.jar.SetCookies(&url.URL{Scheme: "http", Host: loginHost}, []*http.Cookie{c})
		refused(t, thief, thief.get(cb), expired)
	})
}

func TestOIDCProviderUnreachableOrNotTheIssuer(t *testing.T) {
	p := provider(t)
	// A proxy to the real provider at another address: its discovery
	// document names an issuer that is not the one configured.
	target, _ := url.Parse(p.Issuer)
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer proxy.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct{ name, issuer, log string }{
		{"wrong issuer", proxy.URL, "did not match"},
		{"down", closed.URL, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOIDCEnv(t, func(c *Config) { c.OIDC.Issuer = tc.issuer })
			b := e.browser(t)
			start := time.Now()
			p := b.get("http://" + loginHost + OIDCStartPath + "?next=/")
			if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "Sign-in with GitLab is not available right now") || p.url.Host != loginHost {
				t.Errorf("start: %s %d %q, want 503 and the login page saying so", p.url, p.status, p.body)
			}
			if d := time.Since(start); d > oidcTimeout {
				t.Errorf("start took %v", d)
			}
			if b.stateCookie() != nil {
				t.Errorf("a state cookie was set without a provider")
			}
			if !strings.Contains(e.log.String(), tc.log) {
				t.Errorf("the gate's log does not say %q:\n%s", tc.log, e.log)
			}
			// The gate still serves the rest.
			if p := b.post("http://"+loginHost+LoginPath, url.Values{"password": {"hunter2-correct"}, "next": {"/x"}}); p.status != http.StatusOK {
				t.Errorf("a password login meanwhile: %d", p.status)
			}
		})
	}
}

func TestOIDCConfigIsChecked(t *testing.T) {
	ok := OIDC{Issuer: "https://gitlab.example.com", ClientID: "id", ClientSecret: "s3cret-value", Groups: []string{"acme"}}
	for _, tc := range []struct {
		name string
		mod  func(*OIDC)
		want string
	}{
		{"no groups, no explicit any user", func(o *OIDC) { o.Groups = nil }, "groups"},
		{"groups and any user", func(o *OIDC) { o.AllowAnyUser = true }, "not both"},
		{"no secret", func(o *OIDC) { o.ClientSecret = "" }, "secret"},
		{"no client", func(o *OIDC) { o.ClientID = "" }, "client ID"},
		{"not a URL", func(o *OIDC) { o.Issuer = "gitlab.example.com" }, "issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			_, err := New(Config{App: "shop", SHA: "1a2b3c4d", Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Key: testKey, OIDC: &o})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("New: %v, want an error about %s, without the secret", err, tc.want)
			}
		})
	}
	anyone := ok
	anyone.Groups, anyone.AllowAnyUser = nil, true
	if _, err := New(Config{App: "shop", SHA: "1a2b3c4d", Upstream: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}, Key: testKey, OIDC: &anyone}); err != nil {
		t.Errorf("any user, chosen: %v", err)
	}
}

package gate

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
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
	log      *testenv.LockedBuffer
	browsers []*browser
}

var sharedProvider struct {
	once sync.Once
	p    *testenv.OIDCProvider
	err  error
}

// provider is one provider for the test binary (it ends with it), whose
// client may return to either host's callback.
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
	e := &oidcEnv{t: t, provider: p, log: &testenv.LockedBuffer{}}
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
			if seen := b.Seen(); !strings.Contains(seen, "HTTP/1.1 ") || strings.Contains(seen, p.ClientSecret) {
				t.Errorf("the browser's responses hold the client secret, or none was recorded")
			}
		}
		if strings.Contains(e.log.String(), p.ClientSecret) {
			t.Errorf("the client secret is in the gate's log:\n%s", e.log)
		}
	})
	return e
}

// browser is a testenv.WebClient with the gate's sign-in steps.
type browser struct {
	*testenv.WebClient
	provider *testenv.OIDCProvider
}

func (e *oidcEnv) browser(t *testing.T) *browser {
	b := &browser{testenv.NewWebClient(t, "example.com", e.addr), e.provider}
	e.browsers = append(e.browsers, b)
	return b
}

var (
	refreshURL = regexp.MustCompile(`content="0;url=([^"]+)"`)
	buttonURL  = regexp.MustCompile(`id="oidc" href="([^"]+)"`)
)

// toProvider opens target as a browser without a session would, follows
// the hop to the login host and its "Sign in with GitLab" button: it ends
// on the provider's login form.
func (b *browser) toProvider(target string) testenv.Page {
	b.T.Helper()
	p := b.Get(target)
	if p.URL.Host != loginHost {
		if p.Status != http.StatusUnauthorized {
			b.T.Fatalf("%s: %d, want 401", target, p.Status)
		}
		if refreshURL.MatchString(p.Body) {
			p = b.Get(p.Link(b.T, refreshURL))
		}
	}
	if !strings.Contains(p.Body, ">Sign in with GitLab</a>") {
		b.T.Fatalf("%s: no button to sign in with GitLab in %q", p.URL, p.Body)
	}
	return b.Get(p.Link(b.T, buttonURL))
}

// signIn fills in the provider's login form on p as user.
func (b *browser) signIn(p testenv.Page, user string) testenv.Page {
	b.T.Helper()
	return b.provider.SignIn(b.WebClient, p, user, userPass)
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
			if got.Status != tc.status {
				t.Fatalf("after signing in at the provider: %s %d %q, want %d", got.URL, got.Status, got.Body, tc.status)
			}
			again := b.Get("http://" + previewHost + "/other")
			if tc.status == http.StatusOK {
				if got.URL.String() != "http://"+previewHost+"/page?x=1" || !strings.HasPrefix(got.Body, "app /page?x=1 cookie= ") {
					t.Errorf("landed on %s with %q, want the app's /page?x=1 on the preview, without the gate's cookies", got.URL, got.Body)
				}
				if again.Status != http.StatusOK {
					t.Errorf("the preview afterwards: %d, want the app", again.Status)
				}
				return
			}
			if !strings.Contains(got.Body, "This preview is protected") || !strings.Contains(got.Body, "who is not in a group allowed to see this preview") ||
				!strings.Contains(got.Body, "bob") || got.URL.Host != loginHost {
				t.Errorf("non-member: %s %q, want the login host's login page saying why", got.URL, got.Body)
			}
			if again.Status != http.StatusUnauthorized {
				t.Errorf("the preview after a non-member's sign-in: %d, want 401", again.Status)
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
	p := b.Get("http://" + previewHost + "/page")
	if p.Status != http.StatusUnauthorized || strings.Contains(p.Body, `name="password"`) || strings.Contains(p.Body, "share link") {
		t.Fatalf("login page without a password: %d %q, want 401 with the button alone", p.Status, p.Body)
	}
	got := b.signIn(b.Get(p.Link(t, buttonURL)), "alice")
	if got.Status != http.StatusOK || got.URL.String() != "http://"+previewHost+"/page" {
		t.Errorf("after signing in: %s %d %q, want the app's /page", got.URL, got.Status, got.Body)
	}
}

// callback signs in as alice in b, stopping at the provider's redirect to
// the gate's callback, which it returns.
func (b *browser) callback(target string) string {
	b.T.Helper()
	b.Stop = func(u *url.URL) bool { return u.Path == OIDCCallbackPath }
	defer func() { b.Stop = nil }()
	p := b.signIn(b.toProvider(target), "alice")
	loc := p.Header.Get("Location")
	if p.Status != http.StatusFound && p.Status != http.StatusSeeOther || !strings.Contains(loc, OIDCCallbackPath) {
		b.T.Fatalf("provider's answer: %d to %q, want a redirect to the callback", p.Status, loc)
	}
	return loc
}

func (b *browser) stateCookie() *http.Cookie {
	for _, c := range b.Jar.Cookies(&url.URL{Scheme: "http", Host: loginHost, Path: "/"}) {
		if c.Name == oidcCookieName {
			return c
		}
	}
	return nil
}

func TestOIDCRefusesForgedAndReplayedCallbacks(t *testing.T) {
	e := newOIDCEnv(t, nil)
	target := "http://" + previewHost + "/page"
	refused := func(t *testing.T, b *browser, p testenv.Page, why string) {
		t.Helper()
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, why) {
			t.Errorf("%s: %d %q, want 403 saying %q", p.URL, p.Status, p.Body, why)
		}
		if p := b.Get(target); p.Status != http.StatusUnauthorized {
			t.Errorf("the preview afterwards: %d, want 401", p.Status)
		}
	}
	const expired = "This sign-in has expired or was already used"

	t.Run("tampered state", func(t *testing.T) {
		b := e.browser(t)
		cb, _ := url.Parse(b.callback(target))
		q := cb.Query()
		q.Set("state", q.Get("state")[1:]+"A")
		cb.RawQuery = q.Encode()
		refused(t, b, b.Get(cb.String()), expired)
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
		b.Jar.SetCookies(&url.URL{Scheme: "http", Host: loginHost}, []*http.Cookie{c})
		refused(t, b, b.Get(cb), expired)
	})
	t.Run("another browser's callback", func(t *testing.T) {
		cb := e.browser(t).callback(target)
		b := e.browser(t) // login CSRF: a victim sent the attacker's callback
		refused(t, b, b.Get(cb), expired)
	})
	t.Run("no nonce", func(t *testing.T) {
		b := e.browser(t)
		b.Stop = func(u *url.URL) bool { return u.Host == strings.TrimPrefix(e.provider.Issuer, "http://") }
		p := b.toProvider(target)
		b.Stop = nil
		auth, _ := url.Parse(p.Header.Get("Location"))
		q := auth.Query()
		if q.Get("nonce") == "" || q.Get("state") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			t.Fatalf("authorization request %s: want state, nonce and an S256 challenge", auth)
		}
		q.Del("nonce")
		auth.RawQuery = q.Encode()
		refused(t, b, b.signIn(b.Get(auth.String()), "alice"), "could not be checked")
		if !strings.Contains(e.log.String(), "nonce") {
			t.Errorf("the gate's log does not say why:\n%s", e.log)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := e.browser(t)
		cb := b.callback(target)
		c := b.stateCookie()
		if p := b.Get(cb); p.Status != http.StatusOK || p.URL.Host != previewHost {
			t.Fatalf("the callback: %s %d, want the app", p.URL, p.Status)
		}
		if b.stateCookie() != nil {
			t.Errorf("the state cookie outlived its callback")
		}
		if p := b.Get(cb); p.Status != http.StatusForbidden {
			t.Errorf("the callback again: %d, want 403", p.Status)
		}
		thief := e.browser(t) // with the cookie too
		thief.Jar.SetCookies(&url.URL{Scheme: "http", Host: loginHost}, []*http.Cookie{c})
		refused(t, thief, thief.Get(cb), expired)
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
			p := b.Get("http://" + loginHost + OIDCStartPath + "?next=/")
			if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "Sign-in with GitLab is not available right now") || p.URL.Host != loginHost {
				t.Errorf("start: %s %d %q, want 503 and the login page saying so", p.URL, p.Status, p.Body)
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
			if p := b.Post("http://"+loginHost+LoginPath, url.Values{"password": {"hunter2-correct"}, "next": {"/x"}}); p.Status != http.StatusOK {
				t.Errorf("a password login meanwhile: %d", p.Status)
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

// TestOIDCStartOnAPreviewGoesToTheLoginHost: a sign-in started on a
// preview's host goes through the login host's hop (the one registered
// redirect URI), and returns only to a path of this host.
func TestOIDCStartOnAPreviewGoesToTheLoginHost(t *testing.T) {
	g := newGate(t, upstream(t), &clock{time.Unix(1_800_000_000, 0)}, func(c *Config) {
		c.LoginHost, c.Domain = "shop.example.com", "example.com"
		c.OIDC = &OIDC{Issuer: "https://gitlab.example.com", ClientID: "id", ClientSecret: "s3cret-value", Groups: []string{"acme"}}
	})
	for next, want := range map[string]string{
		"/page?x=1":             "https://shop.example.com/_shipper/sso?to=https%3A%2F%2Fshop-1a2b3c4d.example.com%2Fpage%3Fx%3D1",
		"//evil.example.net/":   "https://shop.example.com/_shipper/sso?to=https%3A%2F%2Fshop-1a2b3c4d.example.com%2F",
		"https://evil.example/": "https://shop.example.com/_shipper/sso?to=https%3A%2F%2Fshop-1a2b3c4d.example.com%2F",
	} {
		resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com"+OIDCStartPath+"?next="+url.QueryEscape(next), nil, nil)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != want || len(resp.Cookies()) != 0 {
			t.Errorf("start with next %q: %d to %q, cookies %v; want 303 to %q, none", next, resp.StatusCode, got, resp.Cookies(), want)
		}
	}
}

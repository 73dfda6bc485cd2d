package gate

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Paths and names the gate owns on every protected host.
const (
	LoginPath    = "/_shipper/login"
	SSOPath      = "/_shipper/sso"
	TicketPath   = "/_shipper/ticket"
	BypassHeader = "X-Shipper-Bypass"
	ShareParam   = "shipper-share"
	cookieName   = "shipper-gate"
	// securePrefix makes browsers keep the cookie host-only, Secure and on
	// path "/" (RFC 6265bis __Host- prefix).
	securePrefix = "__Host-"
)

// Config is what one gate guards and how.
type Config struct {
	// App and SHA name what this pod serves: the app's cookie is good for
	// every preview of App, a share link for SHA's only.
	App, SHA string
	// Upstream is the app, on loopback.
	Upstream *url.URL
	// Key signs cookies and share links (a random value per app, from its
	// Secret); rotating it ends every session and link.
	Key []byte
	// Password lets a browser in through the login page; "" turns the
	// page's form off. Bypass, when set, lets in a request that carries
	// it in BypassHeader (automation).
	Password, Bypass string
	// Secure is whether the hosts are served over https: cookies are then
	// Secure and __Host- prefixed.
	Secure bool
	// LoginHost, when set, is the app's host where logins happen (its
	// production host, served by a gate of the same app and key): a
	// preview's login page sends the browser there, and a session there
	// opens every preview without another login (sso.go). Domain is the
	// base domain of the app's hosts, which the hop may return to.
	LoginHost, Domain string
	// OIDC, when set, lets people sign in with an OpenID Connect provider
	// (oidc.go), beside the password or instead of it.
	OIDC *OIDC
	// Session is how long a login lasts (default 12 h).
	Session time.Duration
	// Log receives what the gate decided about sign-ins (never a secret
	// or a token); silent by default.
	Log *slog.Logger
	// Now is the clock (tests); time.Now by default.
	Now func() time.Time
}

// Gate is the protecting handler; New builds it.
type Gate struct {
	cfg    Config
	keys   keys
	proxy  *httputil.ReverseProxy
	limits *limiter
	oidc   *oidcLogin // nil: no provider
}

// New returns the gate of cfg.
func New(cfg Config) (*Gate, error) {
	if cfg.App == "" || cfg.SHA == "" || cfg.Upstream == nil {
		return nil, errors.New("gate: app, commit and upstream are required")
	}
	if len(cfg.Key) < 32 {
		return nil, errors.New("gate: the key must be at least 32 bytes")
	}
	if cfg.Session <= 0 {
		cfg.Session = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	g := &Gate{cfg: cfg, keys: deriveKeys(cfg.Key, cfg.Password), limits: newLimiter()}
	if cfg.OIDC != nil {
		if err := cfg.OIDC.check(); err != nil {
			return nil, err
		}
		g.oidc = newOIDCLogin(*cfg.OIDC, cfg.Now)
	}
	up := cfg.Upstream
	g.proxy = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(up)
		r.Out.Host = r.In.Host
		r.SetXForwarded()
		stripCredentials(r.Out)
	}}
	return g, nil
}

// withSecrets is g with another key, password and bypass (a reload of
// the gate's Secret): sessions and links of the old ones end; the login
// limits and the sign-in's state carry over, so a Secret change does not
// hand an attacker a fresh burst of guesses.
func (g *Gate) withSecrets(key []byte, password, bypass string) (*Gate, error) {
	if len(key) < 32 {
		return nil, errors.New("gate: the key must be at least 32 bytes")
	}
	n := *g
	n.cfg.Key, n.cfg.Password, n.cfg.Bypass = key, password, bypass
	n.keys = deriveKeys(key, password)
	return &n, nil
}

func (g *Gate) cookieName() string {
	if g.cfg.Secure {
		return securePrefix + cookieName
	}
	return cookieName
}

// ServeHTTP lets r through to the app or answers it itself.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := g.cfg.Now()
	if g.serveOwn(w, r, now) {
		return
	}
	switch {
	case r.Header.Get(BypassHeader) != "":
		g.bypass(w, r, now)
	case r.URL.Query().Has(ShareParam):
		g.share(w, r, now)
	case g.hasSession(r, now):
		g.proxy.ServeHTTP(w, r)
	default:
		g.page(w, r, http.StatusUnauthorized, "")
	}
}

// bypass lets in a request with the right bypass header; a wrong one
// counts as a login attempt, so the header is no cheaper to guess than the
// password.
func (g *Gate) bypass(w http.ResponseWriter, r *http.Request, now time.Time) {
	if g.cfg.Bypass != "" && equal(r.Header.Get(BypassHeader), g.cfg.Bypass) {
		g.proxy.ServeHTTP(w, r)
		return
	}
	if !g.limits.allow(g.cfg.App, client(r), now) {
		w.Header().Set("Retry-After", "10")
		g.page(w, r, http.StatusTooManyRequests, "Too many attempts: wait a moment and try again.")
		return
	}
	g.page(w, r, http.StatusUnauthorized, "")
}

// ServePublic serves the gate's public listener (--public-listen): the
// port only production's route reaches while only previews are
// protected. Every request goes to the app, without the gate's
// credentials, except the gate's own paths: production's host is the
// app's login host. What reaches this listener is decided by the route
// that targets its port, which only the app's project writes, never by a
// request's Host header, which a router may pass on from the client as
// it came (ingress-nginx's $best_http_host).
func (g *Gate) ServePublic(w http.ResponseWriter, r *http.Request) {
	if !g.serveOwn(w, r, g.cfg.Now()) {
		g.proxy.ServeHTTP(w, r)
	}
}

// serveOwn answers the gate's own paths and reports whether r was one.
func (g *Gate) serveOwn(w http.ResponseWriter, r *http.Request, now time.Time) bool {
	switch {
	case r.URL.Path == LoginPath:
		g.login(w, r, now)
	case r.URL.Path == SSOPath:
		g.sso(w, r, now)
	case r.URL.Path == TicketPath:
		g.ticket(w, r, now)
	case g.oidc != nil && r.URL.Path == OIDCStartPath:
		g.oidcStart(w, r, now)
	case g.oidc != nil && r.URL.Path == OIDCCallbackPath:
		g.oidcCallback(w, r, now)
	default:
		return false
	}
	return true
}

// hasSession reports whether r carries a valid cookie for this preview.
func (g *Gate) hasSession(r *http.Request, now time.Time) bool {
	c, err := r.Cookie(g.cookieName())
	if err != nil {
		return false
	}
	_, _, ok := verify(g.keys.cookie, "session", c.Value, g.scopes(), now)
	return ok
}

// scopes are what each kind of token must name to let this pod's request in.
func (g *Gate) scopes() map[string]string {
	return map[string]string{kindApp: g.cfg.App, kindCommit: g.cfg.App + "/" + g.cfg.SHA}
}

// login checks a POSTed password and starts a session for the app.
func (g *Gate) login(w http.ResponseWriter, r *http.Request, now time.Time) {
	if r.Method != http.MethodPost {
		g.page(w, r, http.StatusUnauthorized, "")
		return
	}
	if !g.limits.allow(g.cfg.App, client(r), now) {
		w.Header().Set("Retry-After", "10")
		g.page(w, r, http.StatusTooManyRequests, "Too many attempts: wait a moment and try again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	given := r.PostFormValue("password")
	if g.cfg.Password == "" || !equal(given, g.cfg.Password) {
		g.page(w, r, http.StatusUnauthorized, "Wrong password.")
		return
	}
	exp := now.Add(g.cfg.Session)
	g.setCookie(w, issue(g.keys.cookie, "session", kindApp, g.cfg.App, exp), exp, now)
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// share turns a valid share link into a session for this commit's preview,
// then sends the browser to the same address without the token (so it is
// neither bookmarked nor sent on as a Referer).
func (g *Gate) share(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	token := q.Get(ShareParam)
	kind, exp, ok := verify(g.keys.share, "share", token, map[string]string{kindCommit: g.cfg.App + "/" + g.cfg.SHA}, now)
	if !ok || kind != kindCommit {
		g.page(w, r, http.StatusForbidden, "This share link is not valid, or it has expired.")
		return
	}
	if limit := now.Add(g.cfg.Session); exp.After(limit) {
		exp = limit
	}
	g.setCookie(w, issue(g.keys.cookie, "session", kindCommit, g.cfg.App+"/"+g.cfg.SHA, exp), exp, now)
	q.Del(ShareParam)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	http.Redirect(w, r, localPath(u.String()), http.StatusSeeOther)
}

func (g *Gate) setCookie(w http.ResponseWriter, value string, exp, now time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: g.cookieName(), Value: value, Path: "/", Expires: exp.UTC(),
		MaxAge: max(1, int(exp.Sub(now).Seconds())), HttpOnly: true, Secure: g.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// localPath is next if it is a path on this host, "/" otherwise: a login
// never redirects elsewhere (no open redirect).
func localPath(next string) string {
	// A control character is dropped by browsers before they read the
	// address: "/\t/evil.example" would be "//evil.example" (hostile review).
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "/"
	}
	return next
}

// stripCredentials removes what only the gate may read from a request it
// forwards: the app never sees the bypass secret, the session cookie or a
// sign-in's state cookie.
func stripCredentials(r *http.Request) {
	r.Header.Del(BypassHeader)
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if name := strings.TrimPrefix(c.Name, securePrefix); name == cookieName || name == oidcCookieName {
			continue
		}
		r.AddCookie(c)
	}
}

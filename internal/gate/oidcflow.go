package gate

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Sign-in with an OpenID Connect provider (GitLab). The protocol is
// go-oidc's (discovery, the ID token's signature, issuer, audience and
// expiry) and x/oauth2's (the authorization URL, PKCE, the code exchange);
// the gate checks only what those leave to their caller: the state, bound
// to the browser by a signed cookie (oidcstate.go), the nonce, userinfo's
// subject, and the groups.
//
//	https://shop.example.com/_shipper/sso?to=<page>       401, login page: "Sign in with GitLab"
//	https://shop.example.com/_shipper/oidc/start?next=/_shipper/sso?to=<page>
//	                                  state cookie set, 303 to the provider (state, nonce, S256 challenge)
//	https://gitlab.example.com/oauth/authorize?...        the user signs in there
//	https://shop.example.com/_shipper/oidc/callback?code=&state=
//	                                  code exchanged, ID token checked, groups checked,
//	                                  session cookie set, 303 to next: the SSO hop (sso.go)
//
// Logins happen on the login host when there is one (the one redirect URI
// to register with the provider); without it, on the host itself.

// errorCode is an OAuth error code (RFC 6749 4.1.2.1: access_denied, ...).
var errorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// oidcStart sends the browser to the provider, with a state cookie that
// its return must match.
func (g *Gate) oidcStart(w http.ResponseWriter, r *http.Request, now time.Time) {
	next := localPath(r.URL.Query().Get("next"))
	if g.cfg.LoginHost != "" && r.Host != g.cfg.LoginHost {
		// Logins happen on the login host, whose hop comes back here.
		u, _ := url.Parse(next)
		http.Redirect(w, r, g.ssoURL(r.Host, u.Path, u.RawQuery), http.StatusSeeOther)
		return
	}
	p, err := g.oidc.discover(r.Context())
	if err != nil {
		g.oidcUnavailable(w, r, next, err)
		return
	}
	st, err := newOIDCState(next)
	if err != nil {
		g.oidcUnavailable(w, r, next, err)
		return
	}
	g.setOIDCCookie(w, r, st, now)
	target := g.oidc.oauth2(p, g.callbackURL(r)).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// oidcCallback turns the provider's answer into a session, once.
func (g *Gate) oidcCallback(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	st, ok := g.oidcCookie(r, now)
	g.clearOIDCCookie(w)
	if !ok || !equal(q.Get("state"), st.State) || !g.oidc.used.first(st.State, now.Add(oidcStateTTL), now) {
		g.pageNext(w, r, http.StatusForbidden, "This sign-in has expired or was already used: sign in again.", st.Next)
		return
	}
	if e := q.Get("error"); e != "" {
		if !errorCode.MatchString(e) { // the browser's to write: no line breaks into the log
			e = "(not an error code)"
		}
		g.cfg.Log.Info("OpenID Connect sign-in refused by the provider", "error", e)
		g.pageNext(w, r, http.StatusForbidden, g.oidc.cfg.Name+" did not sign you in.", st.Next)
		return
	}
	if !g.limits.allow(g.cfg.App, client(r), now) {
		w.Header().Set("Retry-After", "10")
		g.pageNext(w, r, http.StatusTooManyRequests, "Too many attempts: wait a moment and try again.", st.Next)
		return
	}
	p, err := g.oidc.discover(r.Context())
	if err != nil {
		g.oidcUnavailable(w, r, st.Next, err)
		return
	}
	ctx, cancel := g.oidc.context(r.Context())
	defer cancel()
	who, err := g.oidc.identify(ctx, p, g.callbackURL(r), q.Get("code"), st)
	switch {
	case errors.Is(err, errNotMember):
		g.cfg.Log.Info("OpenID Connect sign-in of a non-member refused", "app", g.cfg.App, "user", who.String())
		g.pageNext(w, r, http.StatusForbidden, "You are signed in to "+g.oidc.cfg.Name+" as "+who.String()+", who is not in a group allowed to see this preview.", st.Next)
		return
	case err != nil:
		g.cfg.Log.Warn("OpenID Connect sign-in refused", "app", g.cfg.App, "error", err)
		g.pageNext(w, r, http.StatusForbidden, "The sign-in with "+g.oidc.cfg.Name+" could not be checked: sign in again.", st.Next)
		return
	}
	g.cfg.Log.Info("signed in with OpenID Connect", "app", g.cfg.App, "user", who.String())
	exp := now.Add(g.cfg.Session)
	g.setCookie(w, issue(g.keys.cookie, "session", kindApp, g.cfg.App, exp), exp, now)
	http.Redirect(w, r, localPath(st.Next), http.StatusSeeOther)
}

// callbackURL is the redirect URI of a sign-in started on r's host (the
// login host, when there is one: oidcStart sends the others there).
func (g *Gate) callbackURL(r *http.Request) string {
	return (&url.URL{Scheme: g.scheme(), Host: r.Host, Path: OIDCCallbackPath}).String()
}

func (g *Gate) oidcUnavailable(w http.ResponseWriter, r *http.Request, next string, err error) {
	g.cfg.Log.Warn("OpenID Connect provider unavailable", "error", err)
	w.Header().Set("Retry-After", "30")
	g.pageNext(w, r, http.StatusServiceUnavailable, "Sign-in with "+g.oidc.cfg.Name+" is not available right now: try again in a minute.", next)
}

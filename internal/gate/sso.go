package gate

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Single sign-on across an app's previews. Cookies are host-only, so a
// login on one preview's host is not sent to another's. Each preview's
// login page (a 401, for curl too) sends a browser on, by a meta refresh,
// to the app's login host:
//
//	https://shop-1a2b3c4d.example.com/page             401, refresh to
//	https://shop.example.com/_shipper/sso?to=<page>    a session there? 303 to
//	https://shop-1a2b3c4d.example.com/_shipper/ticket?t=<ticket>&next=/page
//	                                                   cookie set, 303 to /page
//
// Without a session at the login host the browser gets the login form
// there, which returns through the same hop once the password is right.
// A ticket is good for 60 s and for the one host it names, which must be
// one of the app's own hosts: the hop never hands a ticket to another.

// ticketTTL is how long a ticket may take from the login host to the
// preview.
const ticketTTL = 60 * time.Second

var previewSuffix = regexp.MustCompile(`^-[0-9a-f]{8}$`)

// appHost reports whether host is one of the app's own: its production
// host, a preview's or an alias's, under the configured base domain.
func (g *Gate) appHost(host string) bool {
	label, ok := strings.CutSuffix(host, "."+g.cfg.Domain)
	if !ok || g.cfg.Domain == "" {
		return false
	}
	rest, ok := strings.CutPrefix(label, g.cfg.App)
	return ok && (rest == "" || previewSuffix.MatchString(rest) ||
		strings.HasPrefix(rest, "--") && len(rest) > 2 && !strings.ContainsAny(rest, "."))
}

func (g *Gate) scheme() string {
	if g.cfg.Secure {
		return "https"
	}
	return "http"
}

// ssoTarget is where a preview's login page sends a browser for request
// r, "" when there is no login host (or this is it).
func (g *Gate) ssoTarget(r *http.Request) string {
	if g.cfg.LoginHost == "" || r.Host == g.cfg.LoginHost {
		return ""
	}
	return g.ssoURL(r.Host, r.URL.Path, r.URL.RawQuery)
}

// ssoURL is the hop at the login host that returns to path?query on host.
func (g *Gate) ssoURL(host, path, query string) string {
	to := url.URL{Scheme: g.scheme(), Host: host, Path: path, RawQuery: query}
	return (&url.URL{Scheme: g.scheme(), Host: g.cfg.LoginHost, Path: SSOPath, RawQuery: url.Values{"to": {to.String()}}.Encode()}).String()
}

// sso, on the login host, sends a browser with a session back to the
// preview it came from with a ticket, and one without to the login form.
func (g *Gate) sso(w http.ResponseWriter, r *http.Request, now time.Time) {
	to, ok := g.returnURL(r.URL.Query().Get("to"))
	if !ok {
		g.page(w, r, http.StatusBadRequest, "This sign-in link does not lead to one of the app's previews.")
		return
	}
	next := to.RequestURI()
	if !g.hasAppSession(r, now) {
		r.URL.RawQuery = url.Values{"to": {to.String()}}.Encode()
		g.page(w, r, http.StatusUnauthorized, "")
		return
	}
	t := issue(g.keys.cookie, "ticket", kindApp, g.cfg.App+"|"+to.Host, now.Add(ticketTTL))
	back := url.URL{Scheme: to.Scheme, Host: to.Host, Path: TicketPath, RawQuery: url.Values{"t": {t}, "next": {next}}.Encode()}
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// returnURL is raw, a hop's ?to=, when the hop may return there: a URL
// on one of the app's own hosts, in the gate's scheme, without a user or
// a port.
func (g *Gate) returnURL(raw string) (*url.URL, bool) {
	to, err := url.Parse(raw)
	if err != nil || to.Scheme != g.scheme() || to.User != nil || to.Port() != "" || !g.appHost(to.Hostname()) {
		return nil, false
	}
	return to, true
}

// hopOrigin is where the login form of a hop (next is the hop, at the
// login host) leads in the end: the preview's origin, "" for any other
// form. A browser checks the redirects that follow a form's POST against
// the page's CSP form-action too, so the login host's page must name the
// preview the hop returns to, or the browser stops on the right password.
func (g *Gate) hopOrigin(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Path != SSOPath || u.Host != "" {
		return ""
	}
	to, ok := g.returnURL(u.Query().Get("to"))
	if !ok || strings.Trim(to.Host, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return "" // nothing but a host name goes into the header
	}
	return to.Scheme + "://" + to.Host
}

// ticket, on a preview, turns a ticket for this host into a session.
func (g *Gate) ticket(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	if _, _, ok := verify(g.keys.cookie, "ticket", q.Get("t"), map[string]string{kindApp: g.cfg.App + "|" + r.Host}, now); !ok {
		g.page(w, r, http.StatusForbidden, "This sign-in has expired: sign in again.")
		return
	}
	exp := now.Add(g.cfg.Session)
	g.setCookie(w, issue(g.keys.cookie, "session", kindApp, g.cfg.App, exp), exp, now)
	http.Redirect(w, r, localPath(q.Get("next")), http.StatusSeeOther)
}

// hasAppSession is hasSession for a login (not a share link's session,
// which opens one commit's preview only).
func (g *Gate) hasAppSession(r *http.Request, now time.Time) bool {
	c, err := r.Cookie(g.cookieName())
	if err != nil {
		return false
	}
	kind, _, ok := verify(g.keys.cookie, "session", c.Value, g.scopes(), now)
	return ok && kind == kindApp
}

package gate

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSingleSignOn: a browser follows a preview's login page to the app's
// login host, signs in once there, and comes back to the preview with a
// session; a second preview then opens without a password, through the
// same hop. The hop hands tickets only to the app's own hosts, and a
// ticket works only on the host it names, for a minute.
func TestSingleSignOn(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	sso := func(c *Config) { c.LoginHost, c.Domain = "shop.example.com", "example.com" }
	first := newGate(t, up, clk, sso)
	second := newGate(t, up, clk, func(c *Config) { sso(c); c.SHA = "9f8e7d6c5b4a" })
	prod := newGate(t, up, clk, func(c *Config) { sso(c); c.SHA = "0000aaaa1111" })

	// browser keeps one cookie per host, as a browser would.
	jar := map[string]*http.Cookie{}
	get := func(g http.Handler, target string) *http.Response {
		u, _ := url.Parse(target)
		var cs []*http.Cookie
		if c := jar[u.Host]; c != nil {
			cs = append(cs, c)
		}
		resp := do(g, http.MethodGet, target, nil, nil, cs...)
		for _, c := range resp.Cookies() {
			jar[u.Host] = c
		}
		return resp
	}
	refresh := func(resp *http.Response) string {
		body := text(t, resp)
		i := strings.Index(body, `content="0;url=`)
		if resp.StatusCode != http.StatusUnauthorized || i < 0 {
			t.Fatalf("login page: %d %q, want 401 with a refresh to the login host", resp.StatusCode, body)
		}
		raw := body[i+len(`content="0;url=`):]
		return strings.ReplaceAll(raw[:strings.IndexByte(raw, '"')], "&amp;", "&")
	}

	hop := refresh(get(first, "https://shop-1a2b3c4d.example.com/page?x=1"))
	if !strings.HasPrefix(hop, "https://shop.example.com/_shipper/sso?to=") {
		t.Fatalf("refresh to %q, want the login host", hop)
	}
	resp := get(prod, hop)
	if body := text(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login host without a session: %d, want 401 and the form", resp.StatusCode)
	}
	u, _ := url.Parse(hop)
	resp = do(prod, http.MethodPost, "https://shop.example.com"+LoginPath, url.Values{"password": {"hunter2-correct"}, "next": {u.RequestURI()}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != u.RequestURI() {
		t.Fatalf("login at the login host: %d to %q, want 303 back to the hop", resp.StatusCode, resp.Header.Get("Location"))
	}
	jar["shop.example.com"] = sessionCookie(t, resp)
	back := get(prod, hop)
	if back.StatusCode != http.StatusSeeOther || !strings.HasPrefix(back.Header.Get("Location"), "https://shop-1a2b3c4d.example.com/_shipper/ticket?") {
		t.Fatalf("hop with a session: %d to %q, want 303 to the preview's ticket", back.StatusCode, back.Header.Get("Location"))
	}
	ticket := back.Header.Get("Location")
	resp = get(first, ticket)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/page?x=1" {
		t.Fatalf("ticket: %d to %q, want 303 to /page?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(first, "https://shop-1a2b3c4d.example.com/page?x=1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the preview after the hop: %d, want the app", resp.StatusCode)
	}
	// The second preview: one hop, no password.
	hop2 := refresh(get(second, "https://shop-9f8e7d6c.example.com/"))
	back2 := get(prod, hop2)
	if resp := get(second, back2.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second preview's ticket: %d", resp.StatusCode)
	}
	if resp := get(second, "https://shop-9f8e7d6c.example.com/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the second preview: %d, want the app without a second login", resp.StatusCode)
	}

	// A ticket for one host does not open another, nor after a minute.
	if resp := do(second, http.MethodGet, strings.Replace(ticket, "shop-1a2b3c4d", "shop-9f8e7d6c", 1), nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a ticket on another host: %d, want 403", resp.StatusCode)
	}
	clk.now = clk.now.Add(ticketTTL)
	if resp := do(first, http.MethodGet, ticket, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a ticket after %v: %d, want 403", ticketTTL, resp.StatusCode)
	}
	// The hop hands tickets only to the app's own hosts.
	for _, to := range []string{
		"https://evil.example.net/", "https://shop.example.com.evil.net/", "https://blog-1a2b3c4d.example.com/",
		"https://shop-main.example.com/", "http://shop-1a2b3c4d.example.com/", "https://shop-1a2b3c4d.example.com:8443/",
		"https://user@shop-1a2b3c4d.example.com/", "//shop-1a2b3c4d.example.com/", "https://x.shop.example.com/",
	} {
		resp := get(prod, "https://shop.example.com"+SSOPath+"?to="+url.QueryEscape(to))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("hop to %s: %d to %q, want 400", to, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, to := range []string{"https://shop--main.example.com/", "https://shop.example.com/"} {
		if resp := get(prod, "https://shop.example.com"+SSOPath+"?to="+url.QueryEscape(to)); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("hop to %s: %d, want 303", to, resp.StatusCode)
		}
	}
}

// TestTheLoginFormMayReturnToThePreview: a browser checks the redirects
// after a form's POST against the page's CSP form-action, so the login
// host's form of a hop names the preview it returns to (and only it, only
// one of the app's own), or the right password ends on an aborted page
// (found by TestGateInABrowser in Chromium). Any other page's form posts
// to its own origin only.
func TestTheLoginFormMayReturnToThePreview(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	sso := func(c *Config) { c.LoginHost, c.Domain = "shop.example.com", "example.com" }
	prod := newGate(t, up, clk, func(c *Config) { sso(c); c.SHA = "0000aaaa1111" })
	preview := newGate(t, up, clk, sso)
	formAction := func(resp *http.Response) string {
		for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(d), "form-action "); ok {
				return rest
			}
		}
		return "(none)"
	}
	hop := SSOPath + "?to=" + url.QueryEscape("https://shop-1a2b3c4d.example.com/page?x=1")
	if got := formAction(do(prod, http.MethodGet, "https://shop.example.com"+hop, nil, nil)); got != "'self' https://shop-1a2b3c4d.example.com" {
		t.Errorf("the hop's login form: form-action %s, want 'self' and the preview's origin", got)
	}
	wrong := do(prod, http.MethodPost, "https://shop.example.com"+LoginPath, url.Values{"password": {"wrong"}, "next": {hop}}, nil)
	if got := formAction(wrong); wrong.StatusCode != http.StatusUnauthorized || got != "'self' https://shop-1a2b3c4d.example.com" {
		t.Errorf("after a wrong password: %d, form-action %s, want 401 and the preview's origin still", wrong.StatusCode, got)
	}
	for _, target := range []string{
		"https://shop.example.com" + SSOPath + "?to=" + url.QueryEscape("https://evil.example.net/"),
		"https://shop.example.com" + SSOPath + "?to=" + url.QueryEscape("https://shop--a;script-src%20*.example.com/"),
		"https://shop.example.com/page",
		"https://shop-1a2b3c4d.example.com/page",
	} {
		g := prod
		if strings.HasPrefix(target, "https://shop-") {
			g = preview
		}
		if got := formAction(do(g, http.MethodGet, target, nil, nil)); got != "'self'" {
			t.Errorf("%s: form-action %s, want 'self' only", target, got)
		}
	}
}

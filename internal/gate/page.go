package gate

import (
	"html/template"
	"net/http"
	"net/url"
	"sync"
)

// loginPage is what a browser without a session sees: which app and commit
// it asked for, that it is protected, the button that signs in with the
// provider (when there is one) and the password form (when the app has a
// password). Nothing of the app is shown. Parsed on first use: shipper's
// CLI links this package and never serves the page, and every process
// would parse it at start.
var loginPage = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex">{{with .SSO}}<meta http-equiv="refresh" content="0;url={{.}}">{{end}}<title>{{.App}}: protected preview</title>
<style>body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}code{background:#eee;padding:.1rem .3rem}p.err{color:#b00}
input,button,a.button{font:inherit;padding:.4rem;margin:.2rem 0}
a.button{display:inline-block;border:1px solid #888;border-radius:4px;color:inherit;text-decoration:none}</style></head>
<body><h1>This preview is protected</h1>
{{if .Opening}}<p>App <code>{{.App}}</code>: sign in to open <code>{{.Opening}}</code>.</p>
{{else}}<p>App <code>{{.App}}</code>, commit <code>{{.Commit}}</code>.</p>{{end}}
{{with .Message}}<p class="err" id="message">{{.}}</p>{{end}}
{{if .SSO}}<p><a href="{{.SSO}}">Sign in</a> to open it.</p>
{{else}}{{with .OIDC}}<p><a class="button" id="oidc" href="{{.Start}}">Sign in with {{.Name}}</a></p>
{{end}}{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="next" value="{{.Next}}">
<label>Password <input type="password" name="password" autocomplete="current-password" autofocus required></label>
<button type="submit">Open preview</button></form>
{{else if not .OIDC}}<p>Ask the team for a share link.</p>{{end}}{{end}}
</body></html>
`))
})

// page answers r with the login page and status.
func (g *Gate) page(w http.ResponseWriter, r *http.Request, status int, message string) {
	next := r.URL.RequestURI()
	if r.URL.Path == LoginPath {
		next = localPath(r.PostFormValue("next"))
	}
	g.pageNext(w, r, status, message, next)
}

// pageNext is page, returning to next after a sign-in.
func (g *Gate) pageNext(w http.ResponseWriter, r *http.Request, status int, message, next string) {
	sso := ""
	if status == http.StatusUnauthorized && r.URL.Path != LoginPath && r.URL.Path != SSOPath {
		sso = g.ssoTarget(r)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	formAction := "'self'"
	// On the login host, in the hop from a preview: the page names the
	// preview it opens, not the commit this host serves.
	opening := ""
	if origin := g.hopOrigin(localPath(next)); origin != "" {
		formAction += " " + origin
		if u, err := url.Parse(origin); err == nil {
			opening = u.Host
		}
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action "+formAction+"; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	short := g.cfg.SHA
	if len(short) > 8 {
		short = short[:8]
	}
	var provider any // nil, or the button's name and link
	if g.oidc != nil {
		start := url.URL{Path: OIDCStartPath, RawQuery: url.Values{"next": {localPath(next)}}.Encode()}
		provider = map[string]string{"Name": g.oidc.cfg.Name, "Start": start.String()}
	}
	_ = loginPage().Execute(w, map[string]any{
		"App": g.cfg.App, "Commit": short, "Message": message, "Form": g.cfg.Password != "",
		"Action": LoginPath, "Next": localPath(next), "SSO": sso, "OIDC": provider, "Opening": opening,
	})
}

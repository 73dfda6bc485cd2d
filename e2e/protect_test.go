//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
	// host without a login.
	prod := strings.TrimPrefix(c.run(t, sha, "promote"), "http://")
	c.eventually(t, prod, "/version", 200, sha[:8])
	c.curl(t, prod, "/version")
	c.run(t, sha, "list")
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

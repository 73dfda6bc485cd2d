package gate

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestThePublicListenerIsTheAppsOwn: the public listener (the port only
// production's route reaches under --protect previews) passes every
// request to the app, whatever its Host, without the gate's credentials,
// and keeps the gate's own paths (production's host is the login host);
// the protected handler of the same gate asks for a login whatever Host a
// request names, production's included.
func TestThePublicListenerIsTheAppsOwn(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)
	public := http.HandlerFunc(g.ServePublic)
	for _, host := range []string{"shop.example.com", "shop-1a2b3c4d.example.com", "anything.example"} {
		resp := do(public, http.MethodGet, "https://"+host+"/cart", nil, http.Header{BypassHeader: {"automation-secret-0123456789"}})
		if body := text(t, resp); resp.StatusCode != http.StatusOK || body != "app /cart cookie= bypass=" {
			t.Errorf("public %s: %d %q, want the app without the bypass header", host, resp.StatusCode, body)
		}
		if resp := do(g, http.MethodGet, "https://"+host+"/cart", nil, http.Header{"X-Forwarded-Host": {"shop.example.com"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("protected %s: %d, want 401", host, resp.StatusCode)
		}
	}
	resp := do(public, http.MethodPost, "https://shop.example.com"+LoginPath, url.Values{"password": {"hunter2-correct"}, "next": {"/"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Errorf("a login on the public listener: %d, want the gate's 303 and its session", resp.StatusCode)
	}
}

// TestMainChecksItsInputs: each bad flag or secret is a UsageError naming
// it, never quoting a secret.
func TestMainChecksItsInputs(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{KeyVar: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	base := []string{"--app", "myapp", "--sha", "7c77eb36", "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no key", map[string]string{KeyVar: ""}, nil, KeyVar},
		{"a short key", map[string]string{KeyVar: "c2hvcnQta2V5LXNlY3JldA=="}, nil, KeyVar},
		{"no app", nil, []string{"--app", ""}, "--app"},
		{"a bad sha", nil, []string{"--sha", "main"}, "--sha"},
		{"a bad upstream", nil, []string{"--upstream", "ftp://127.0.0.1:1"}, "--upstream"},
		{"a bad listen address", nil, []string{"--listen", "8080"}, "--listen"},
		{"a bad scheme", nil, []string{"--url-scheme", "gopher"}, "--url-scheme"},
		{"a login host without a domain", nil, []string{"--login-host", "myapp.example.com"}, "--domain"},
		{"no key file", nil, []string{"--secrets-dir", dir}, KeyFile},
		{"an argument", nil, []string{"serve"}, "no arguments"},
		{"an unknown flag", nil, []string{"--password=hunter2"}, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return env[k]
			}
			var out bytes.Buffer
			err := Main(context.Background(), "shipper-gate", append(append([]string{}, base...), tc.args...), getenv, &out, &out)
			var bad *UsageError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %v, want a usage error naming %s and no secret", err, tc.want)
			}
		})
	}
}

// TestSecretsDirIsReadAgain runs Main as the sidecar does, with its
// secrets as a mounted Secret's files: a new password written to them
// ends the session of the old one, and the new one logs in.
func TestSecretsDirIsReadAgain(t *testing.T) {
	old := reloadEvery
	reloadEvery = 50 * time.Millisecond
	t.Cleanup(func() { reloadEvery = old })
	dir := t.TempDir()
	write := func(name, v string) {
		// As the kubelet does: a new file renamed over the old.
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(KeyFile, string(testKey))
	write(PasswordFile, "first-password")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, "shipper-gate", []string{"--app", "shop", "--sha", "1a2b3c4d", "--listen", addr,
			"--upstream", upstream(t).String(), "--url-scheme", "http", "--secrets-dir", dir}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Main: %v", err)
		}
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, form url.Values, c *http.Cookie) *http.Response {
		var req *http.Request
		if form != nil {
			req, _ = http.NewRequest(method, "http://"+addr+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(method, "http://"+addr+path, nil)
		}
		req.Host = "shop-1a2b3c4d.example.com"
		if c != nil {
			req.AddCookie(c)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}
	loginWith := func(pw string) *http.Cookie {
		resp := send(http.MethodPost, LoginPath, url.Values{"password": {pw}}, nil)
		for _, c := range resp.Cookies() {
			if c.Name == cookieName {
				return c
			}
		}
		return nil
	}
	first := loginWith("first-password")
	if first == nil {
		t.Fatal("the password in the files did not log in")
	}
	if resp := send(http.MethodGet, "/", nil, first); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the session: %d", resp.StatusCode)
	}
	write(PasswordFile, "second-password")
	deadline := time.Now().Add(5 * time.Second)
	for send(http.MethodGet, "/", nil, first).StatusCode != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the old password's session still opens the app 5 s after the password changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if loginWith("first-password") != nil {
		t.Error("the old password still logs in")
	}
	if c := loginWith("second-password"); c == nil || send(http.MethodGet, "/", nil, c).StatusCode != http.StatusOK {
		t.Error("the new password does not open the app")
	}
}

// TestWrongBypassesAreLimited: a wrong bypass header counts as a login
// attempt, so guessing it is as slow as guessing the password; the right
// one still passes.
func TestWrongBypassesAreLimited(t *testing.T) {
	up, clk := upstream(t), &clock{time.Unix(1_800_000_000, 0)}
	g := newGate(t, up, clk, nil)
	limited := 0
	for i := 0; i < 50; i++ {
		resp := do(g, http.MethodGet, "https://shop-1a2b3c4d.example.com/", nil, http.Header{BypassHeader: {"guess-" + string(rune('a'+i%26))}})
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			limited++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("a wrong bypass answered %d", resp.StatusCode)
		}
	}
	if limited < 40 {
		t.Errorf("%d of 50 wrong bypass guesses limited, want all past the burst", limited)
	}
}

// TestNextWithAControlCharacterStaysOnThisHost: browsers drop a TAB or a
// line break from an address, so "/\t/evil.example" is "//evil.example".
func TestNextWithAControlCharacterStaysOnThisHost(t *testing.T) {
	for _, next := range []string{"/\t/evil.example", "/\n/evil.example", "/\x00/evil.example", "/\x7f/evil.example"} {
		if got := localPath(next); got != "/" {
			t.Errorf("localPath(%q) = %q, want /", next, got)
		}
	}
	if got := localPath("/cart?id=1"); got != "/cart?id=1" {
		t.Errorf("localPath kept %q", got)
	}
}

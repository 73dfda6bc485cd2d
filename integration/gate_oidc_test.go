package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/gate"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestGateProcessSignsInWithOIDC runs the real binary with a real
// provider (testenv.StartOIDC): a preview's login page hops to the login
// host (the same process here, as the production pod's gate would be), its
// button to the provider, and a member of the group lands on the page,
// with nothing of the secret in any response or in the gate's log.
func TestGateProcessSignsInWithOIDC(t *testing.T) {
	const loginHost, previewHost = "myapp.example.com", "myapp-7c77eb36.example.com"
	p, err := testenv.StartOIDC([]string{"http://" + loginHost + "/_shipper/oidc/callback"},
		testenv.OIDCUser{Name: "alice", Password: "alice-password", Groups: []string{"acme/previews"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app %s cookies=%d", r.URL.RequestURI(), len(r.Cookies()))
	}))
	defer app.Close()
	var stderr testenv.LockedBuffer
	cmd, addr := startGate(t, app.URL, &stderr, "SHIPPER_GATE_LOGIN_HOST="+loginHost, "SHIPPER_DOMAIN=example.com",
		"SHIPPER_OIDC_ISSUER="+p.Issuer, "SHIPPER_OIDC_CLIENT_ID="+p.ClientID, gate.OIDCSecretVar+"="+p.ClientSecret, "SHIPPER_OIDC_GROUPS=acme/previews")
	defer cmd.Process.Kill()

	b := testenv.NewWebClient(t, "example.com", addr)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the gate did not serve: %v; stderr %q", err, stderr.String())
		}
	}
	page := b.Get("http://" + previewHost + "/hello?x=1")
	page = b.Get(page.Link(t, regexp.MustCompile(`content="0;url=([^"]+)"`)))
	if page.URL.Host != loginHost || !strings.Contains(page.Body, "Sign in with GitLab") {
		t.Fatalf("the login host: %s %d %q, want the login page with the button", page.URL, page.Status, page.Body)
	}
	page = p.SignIn(b, b.Get(page.Link(t, regexp.MustCompile(`id="oidc" href="([^"]+)"`))), "alice", "alice-password")
	if page.Status != http.StatusOK || page.URL.String() != "http://"+previewHost+"/hello?x=1" || page.Body != "app /hello?x=1 cookies=0" {
		t.Errorf("after signing in: %s %d %q, want the app's page on the preview", page.URL, page.Status, page.Body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v", err)
	}
	if log := stderr.String(); !strings.Contains(log, `msg="signed in with OpenID Connect" app=myapp user=alice`) || strings.Contains(log, p.ClientSecret) {
		t.Errorf("the gate's log %q: want alice's sign-in, and never the secret", log)
	}
	if strings.Contains(b.Seen(), p.ClientSecret) {
		t.Errorf("the client secret reached the browser")
	}
}

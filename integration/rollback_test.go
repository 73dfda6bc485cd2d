package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestRollbackChecksTheHostItReturnsTo: a rollback returns to a revision
// with the host it was promoted with. With the domain promote was given it
// says nothing and writes the production URL to --dotenv; with another
// domain it says that production is not on that domain's host.
func TestRollbackChecksTheHostItReturnsTo(t *testing.T) {
	env := testenv.Get(t)
	appName := uniqueName("rbhost")
	shaA := "aaaaaaaa33333333333333333333333333333333"
	shaB := "bbbbbbbb44444444444444444444444444444444"
	for _, sha := range []string{shaA, shaB} {
		e := with(gitlabEnv(t, env, appName, sha), "SHIPPER_RESOLVE", "false", "SHIPPER_IMAGE_REF", "r.example.com/x:1")
		for _, verb := range []string{"deploy", "promote"} {
			if r := runBinary(t, e, verb); r.code != 0 {
				t.Fatalf("%s %s: exit %d\n%s", verb, sha[:8], r.code, r.stderr)
			}
		}
	}
	e := gitlabEnv(t, env, appName, shaB)
	dotenv := filepath.Join(t.TempDir(), "rollback.env")
	r := runBinary(t, with(e, "SHIPPER_DOTENV", dotenv), "rollback")
	url := "https://" + appName + ".example.com"
	if r.code != 0 || r.stdout != "aaaaaaaa\n" || strings.Contains(r.stderr, "warn") {
		t.Errorf("rollback: exit %d, stdout %q, stderr %q; want aaaaaaaa and no warning", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(dotenv); string(b) != "SHIPPER_URL="+url+"\n" {
		t.Errorf("rollback --dotenv wrote %q, want SHIPPER_URL=%s", b, url)
	}
	r = runBinary(t, with(e, "KUBE_INGRESS_BASE_DOMAIN", "new.example.com"), "rollback")
	if r.code != 0 || r.stdout != "bbbbbbbb\n" || !strings.Contains(r.stderr, "warn: production is back on the host of the revision") ||
		!strings.Contains(r.stderr, url) || !strings.Contains(r.stderr, "https://"+appName+".new.example.com") {
		t.Errorf("rollback with another domain: exit %d, stdout %q, stderr %q; want bbbbbbbb and a warning naming both URLs", r.code, r.stdout, r.stderr)
	}
}

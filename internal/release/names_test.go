package release

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNewNames(t *testing.T) {
	long := strings.Repeat("very-long-application-name-", 4)
	for _, tc := range []struct {
		name, app, sha          string
		wantRelease, wantProdNS string
		wantErr                 string // substring; "" = no error
	}{
		{"plain", "myapp", "7C77EB36A1", "myapp-7c77eb36", "myapp-production", ""},
		{"seven hex", "myapp", "7c77eb3", "myapp-7c77eb3", "myapp-production", ""},
		{"full sha", "My_App", strings.Repeat("ab", 20), "my-app-abababab", "my-app-production", ""},
		{"slugged", "  Hello World!!  ", "deadbeef", "hello-world-deadbeef", "hello-world-production", ""},
		{"dots and unicode", "shop.例え.v2", "deadbeef", "shop-v2-deadbeef", "shop-v2-production", ""},
		{"kube-system stays suffixed", "kube-system", "deadbeef", "kube-system-deadbeef", "kube-system-production", ""},
		{"long app truncated with hash", long, "deadbeef", "very-long-application-name-very-lon-6d5753-deadbeef", "very-long-application-name-very-lon-6d5753-production", ""},
		{"empty app", "", "deadbeef", "", "", `invalid app name ""`},
		{"symbols only", "!!!", "deadbeef", "", "", `invalid app name "!!!"`},
		{"sha too short", "myapp", "abc12", "", "", `invalid commit SHA "abc12": must be 7 to 40 hexadecimal characters`},
		{"sha too long", "myapp", strings.Repeat("a", 41), "", "", "invalid commit SHA"},
		{"sha not hex", "myapp", "ghijklmn", "", "", `invalid commit SHA "ghijklmn"`},
		{"sha with path", "myapp", "../../etc", "", "", "invalid commit SHA"},
		{"sha with newline", "myapp", "deadbeef\nx", "", "", "invalid commit SHA"},
		{"digits first would name a Service Kubernetes refuses", "2048", "deadbeef", "", "", `invalid app name "2048": gives the name "2048-production"`},
		{"digits after slugging", "--42-things", "deadbeef", "", "", `invalid app name "--42-things"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewNames(tc.app, tc.sha)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsUsage(err) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Release != tc.wantRelease || got.Namespace != tc.wantRelease {
				t.Errorf("release/namespace = %q/%q, want %q", got.Release, got.Namespace, tc.wantRelease)
			}
			if got.ProductionRelease != tc.wantProdNS || got.ProductionNamespace != tc.wantProdNS {
				t.Errorf("production = %q/%q, want %q", got.ProductionRelease, got.ProductionNamespace, tc.wantProdNS)
			}
			for _, n := range []string{got.Release, got.ProductionRelease} {
				if len(n) > maxReleaseName {
					t.Errorf("%q is %d characters, Helm allows %d", n, len(n), maxReleaseName)
				}
				if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
					t.Errorf("%q is not a DNS-1123 label: %v", n, errs)
				}
			}
			again, _ := NewNames(tc.app, tc.sha)
			if again != got {
				t.Errorf("same inputs gave %+v then %+v", got, again)
			}
		})
	}
}

// TestLongNamesDoNotCollide: two long apps sharing their first 60
// characters must still get different names.
func TestLongNamesDoNotCollide(t *testing.T) {
	prefix := strings.Repeat("a", 60)
	a, err := NewNames(prefix+"-frontend", "deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewNames(prefix+"-backend", "deadbeef")
	if err != nil {
		t.Fatal(err)
	}
	if a.Release == b.Release || a.ProductionRelease == b.ProductionRelease {
		t.Errorf("collision: %q and %q", a.Release, b.Release)
	}
}

func TestHosts(t *testing.T) {
	n, err := NewNames("myapp", "7c77eb36")
	if err != nil {
		t.Fatal(err)
	}
	long, _ := NewNames(strings.Repeat("x", 100), "7c77eb36")
	for _, tc := range []struct {
		name             string
		h                Hosts
		names            Names
		wantPrev, wantPr string
		wantErr          string
	}{
		{"defaults", Hosts{Domain: "example.com"}, n, "myapp-7c77eb36.example.com", "myapp.example.com", ""},
		{"templates", Hosts{Domain: "example.com", PreviewTemplate: "{sha}.{app}.preview.{domain}", ProductionTemplate: "www.{domain}"}, n, "7c77eb36.myapp.preview.example.com", "www.example.com", ""},
		{"explicit hosts need no domain", Hosts{PreviewTemplate: "pr.example.org", ProductionTemplate: "example.org"}, n, "pr.example.org", "example.org", ""},
		{"long app fits a label", Hosts{Domain: "example.com"}, long, long.AppPart + "-7c77eb36.example.com", long.AppPart + ".example.com", ""},
		{"empty domain", Hosts{}, n, "", "", `invalid domain ""`},
		{"domain with scheme", Hosts{Domain: "https://example.com"}, n, "", "", `invalid domain "https://example.com"`},
		{"uppercase template", Hosts{Domain: "example.com", PreviewTemplate: "PR-{sha}.{domain}"}, n, "", "", `invalid preview host "PR-7c77eb36.example.com"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, err1 := tc.h.Preview(tc.names)
			prod, err2 := tc.h.Production(tc.names)
			if tc.wantErr != "" {
				err := err1
				if err == nil {
					err = err2
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsUsage(err) {
					t.Fatalf("err = %v / %v, want a usage error containing %q", err1, err2, tc.wantErr)
				}
				return
			}
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if prev != tc.wantPrev || prod != tc.wantPr {
				t.Errorf("hosts = %q, %q; want %q, %q", prev, prod, tc.wantPrev, tc.wantPr)
			}
		})
	}
}

func FuzzNewNames(f *testing.F) {
	f.Add("myapp", "deadbeef")
	f.Add(strings.Repeat("-a", 50), "DEADBEEF00")
	f.Fuzz(func(t *testing.T, app, sha string) {
		n, err := NewNames(app, sha)
		if err != nil {
			if !IsUsage(err) {
				t.Fatalf("non-usage error %v", err)
			}
			return
		}
		names := []string{n.ProductionRelease}
		if sha != "" {
			names = append(names, n.Release)
		}
		for _, name := range names {
			if errs := objectNameProblems(name); len(errs) > 0 {
				t.Fatalf("NewNames(%q, %q) gave %q, invalid for: %v", app, sha, name, errs)
			}
		}
		for _, v := range []string{n.AppPart, n.Short} {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("NewNames(%q, %q): label value %q invalid: %v", app, sha, v, errs)
			}
		}
	})
}

// objectNameProblems checks name as each object shipper and the chart
// create from it would: written out here again, object by object, rather
// than calling validNames, so the test does not trust the code it tests.
func objectNameProblems(name string) []string {
	var out []string
	add := func(object string, errs []string) {
		for _, e := range errs {
			out = append(out, object+": "+e)
		}
	}
	add("Namespace", validation.IsDNS1123Label(name))
	add("Service", validation.IsDNS1035Label(name))
	for _, kind := range []string{"Deployment", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		add(kind, validation.IsDNS1123Subdomain(name))
	}
	add("Lease", validation.IsDNS1123Subdomain("shipper-"+name))
	add("Helm record Secret", validation.IsDNS1123Subdomain("sh.helm.release.v1."+name+".v20"))
	if len(name) > maxReleaseName {
		out = append(out, fmt.Sprintf("Helm release: %d characters, at most %d", len(name), maxReleaseName))
	}
	add("app label", validation.IsValidLabelValue(name))
	return out
}

func TestWithRef(t *testing.T) {
	n, err := NewNames("myapp", "7c77eb36a1b2c3d4")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.WithRef("Feature/Login")
	if err != nil {
		t.Fatal(err)
	}
	if m.Ref != "feature-login" || m.AliasRelease != "myapp-ref-feature-login" || m.ProductionNamespace != "myapp-production" {
		t.Errorf("WithRef(Feature/Login) = ref %q release %q", m.Ref, m.AliasRelease)
	}
	host, err := Hosts{Domain: "example.com"}.Alias(m)
	if err != nil || host != "myapp--feature-login.example.com" {
		t.Errorf("alias host = %q, %v", host, err)
	}
	for _, bad := range []string{"", "///", "deadbeef", "1234567", "DEADBEEF00"} {
		if _, err := n.WithRef(bad); err == nil {
			t.Errorf("WithRef(%q) accepted, want refused (empty, or a commit's preview host)", bad)
		}
	}
	// The longest app part with long refs sharing a prefix: names fit
	// Helm and DNS, and stay apart. (Refs equal in their first 63 bytes
	// are one ref, as GitLab's CI_COMMIT_REF_SLUG makes them.)
	long, err := NewNames(strings.Repeat("a", 60), "7c77eb36a1b2c3d4")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ref := range []string{strings.Repeat("feature-", 6) + "one", strings.Repeat("feature-", 6) + "two"} {
		m, err := long.WithRef(ref)
		if err != nil {
			t.Fatalf("WithRef(%q): %v", ref, err)
		}
		if len(m.AliasRelease) > 53 || seen[m.AliasRelease] {
			t.Errorf("alias release %q: too long or shared", m.AliasRelease)
		}
		seen[m.AliasRelease] = true
		host, err := Hosts{Domain: "example.com"}.Alias(m)
		if err != nil {
			t.Errorf("alias host of %q: %v", ref, err)
		}
		if seen[host] {
			t.Errorf("alias host %q shared", host)
		}
		seen[host] = true
	}
}

// TestRefSlugIsGitLabs: a branch list (`git ls-remote --heads`) and the
// CI_COMMIT_REF_SLUG GitLab gave a commit's deploy give the same slug, for
// long names too (GitLab cuts at 63 bytes; a hash would not match).
func TestRefSlugIsGitLabs(t *testing.T) {
	for name, gitlab := range map[string]string{
		"main":          "main",
		"Feature/Login": "feature-login",
		"feature/JIRA-1234-make-the-checkout-page-remember-the-last-used-payment-method": "feature-jira-1234-make-the-checkout-page-remember-the-last-used",
		"release/2.0-": "release-2-0",
	} {
		if got := RefSlug(name); got != gitlab || RefSlug(gitlab) != got {
			t.Errorf("RefSlug(%q) = %q, RefSlug(%q) = %q; want both %q", name, got, gitlab, RefSlug(gitlab), gitlab)
		}
	}
}

package release

import (
	"strings"
	"testing"
)

// hostOwner is what a derived host is for: an app's production, one of its
// commits' previews, or one of its refs' aliases.
type hostOwner struct{ app, kind, key string }

// derivedHosts returns every host the default templates give app for shas
// and refs under domain, with what each is for; inputs NewNames, WithSHA or
// WithRef refuse give no host.
func derivedHosts(app string, shas, refs []string, domain string) map[string]hostOwner {
	out := map[string]hostOwner{}
	n, err := NewNames(app, "")
	if err != nil {
		return out
	}
	h := Hosts{Domain: domain}
	if host, err := h.Production(n); err == nil {
		out[host] = hostOwner{n.AppPart, "production", ""}
	}
	for _, sha := range shas {
		if CheckNewCommitSHA(sha) != nil {
			continue
		}
		c, err := n.WithSHA(sha)
		if err != nil {
			continue
		}
		if host, err := h.Preview(c); err == nil {
			out[host] = hostOwner{n.AppPart, "preview", c.Short}
		}
	}
	for _, ref := range refs {
		a, err := n.WithRef(ref)
		if err != nil {
			continue
		}
		if host, err := h.Alias(a); err == nil {
			out[host] = hostOwner{n.AppPart, "alias", a.Ref}
		}
	}
	return out
}

// FuzzHostsUnambiguous: no two of app × {production, preview of a commit,
// alias of a ref} share a host, whatever the app names, SHAs and refs
// (issue 26: app "shop-main"'s production host was app "shop"'s alias of
// branch main, app "shop-1a2b3c4d"'s production host app "shop"'s preview
// of commit 1a2b3c4d). Two apps whose names give one app part share every
// name (namespaces included), so the first one's owner keeps them all
// (the shipper-app-owners policy): the check is on app parts.
func FuzzHostsUnambiguous(f *testing.F) {
	f.Add("shop", "shop-main", "1a2b3c4d5e6f", "main", "shop-1a2b3c4d", "feature")
	f.Add("shop", "shop-1a2b3c4d", "1a2b3c4d", "x", "shop", "1a2b3c4d")
	f.Add("a", "a-b", "deadbeef", "b-c", "a-b-c", "c")
	f.Add("web", "web", "0123456789abcdef", "release/2.0", "web", "release-2-0-"+strings.Repeat("x", 70))
	f.Add(strings.Repeat("long-app-name-", 5)+"one", strings.Repeat("long-app-name-", 5)+"two", "abcdef012", strings.Repeat("feature-", 9)+"a", strings.Repeat("feature-", 9)+"b", "main")
	f.Add("api", "api-20241201", "20241201", "main", "api-main", "x")
	f.Fuzz(func(t *testing.T, app1, app2, sha, ref1, ref2, ref3 string) {
		shas := []string{sha, sha + "0", "1a2b3c4d"}
		refs := []string{ref1, ref2, ref3, app2, sha}
		seen := map[string]hostOwner{}
		for _, app := range []string{app1, app2, app1 + "-" + ref1, app1 + "-" + sha, app2 + "-" + ref2} {
			for host, owner := range derivedHosts(app, shas, refs, "example.com") {
				if other, ok := seen[host]; ok && other != owner {
					t.Fatalf("host %q is both %+v and %+v", host, other, owner)
				}
				seen[host] = owner
			}
		}
	})
}

// TestAppNamesThatLookLikeAPreviewAreRefused: names whose hosts could be
// another app's (a preview's), or reserved labels (2 characters: "ab--x";
// "xn--x" is any internationalized name).
func TestAppNamesThatLookLikeAPreviewAreRefused(t *testing.T) {
	for _, app := range []string{"shop-1a2b3c4d", "api-20241201", "Shop_DEADBEEF", "xn", "ui", "UI"} {
		if _, err := NewNames(app, ""); !IsUsage(err) {
			t.Errorf("NewNames(%q) = %v, want a usage error", app, err)
		}
	}
	for _, app := range []string{"shop", "shop-1a2b3c4", "shop-1a2b3c4d5", "deadbeef", "shop-main", "shop-1a2b3c4g", "x", "abc"} {
		if _, err := NewNames(app, ""); err != nil {
			t.Errorf("NewNames(%q) = %v, want accepted", app, err)
		}
	}
}

// TestHostAllowed: what an app may route under the cluster's settings. The
// same question asked of the apiserver's policy (deploy/rbac/hosts.yaml)
// is TestAHostBelongsToOneApp in integration/.
func TestHostAllowed(t *testing.T) {
	s := Settings{Found: true, Data: map[string]string{
		"domains":    "example.com, preview.example.com",
		"hosts.4711": "shop.example.org *.previews.example.org www.example.com *.example.com\fa.example.net",
	}}
	for _, tc := range []struct {
		app, project, host string
		want               bool
	}{
		{"shop", "4711", "shop.example.com", true},
		{"shop", "", "shop.preview.example.com", true},
		{"shop", "", "shop-1a2b3c4d.example.com", true},
		{"shop", "", "shop--main.example.com", true},
		{"shop", "", "shop--feature--0123456789.example.com", true},
		{"shop", "", "shop-main.example.com", false},       // app shop-main's production
		{"shop", "", "shop-1a2b3c4.example.com", false},    // 7 hex: no preview of shop
		{"shop", "", "shop-1a2b3c4d5.example.com", false},  // 9 hex
		{"shop-main", "", "shop--main.example.com", false}, // shop's alias of main
		{"shop", "", "x.shop.example.com", false},          // not one label
		{"shop", "", "shop.example.com.evil.org", false},
		{"shop", "", "shop.examplexcom", false},
		{"shop", "", "shopexample.com", false},
		{"shop", "", "example.com", false},
		{"shop", "4711", "shop.example.org", true},       // granted
		{"shop", "4711", "a.previews.example.org", true}, // granted wildcard
		{"shop", "4711", "a.b.previews.example.org", true},
		{"shop", "4711", "previews.example.org", false},
		{"shop", "4711", "www.example.com", false},  // granted, but app www's
		{"shop", "4712", "shop.example.org", false}, // another project
		{"shop", "", "shop.example.org", false},
		{"shop", "4711", "*.previews.example.org", true},
		{"shop", "4711", "*.example.com", false},
		{"preview", "", "preview.example.com", false},             // a base domain is no app's host
		{"shop", "4711", "login.shop.example.com", false},         // granted *.example.com: under a base domain
		{"shop", "4711", "a.example.net", true},                   // after a form feed, as the CEL splits
		{"ab", "", "ab--main.example.com", false},                 // a reserved label
		{"xn", "", "xn--n1ae5d4v.example.com", false},             // any IDN
		{"shop-1a2b3c4d", "", "shop-1a2b3c4d.example.com", false}, // a name NewNames refuses
	} {
		if got := s.HostAllowed(tc.app, tc.project, tc.host); got != tc.want {
			t.Errorf("app %s of project %q routing %s: allowed %v, want %v", tc.app, tc.project, tc.host, got, tc.want)
		}
	}
	if !(Settings{}).HostAllowed("shop", "", "anything.example.net") {
		t.Error("without settings a host was refused")
	}
}

package release_test

import (
	"context"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestListAllApps: --all-apps lists the commits of every app of the
// project, by app, the live one marked, and none of another project's
// apps; without a project (an administrator) every project's.
func TestListAllApps(t *testing.T) {
	env := testenv.Get(t)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	image := env.Registry.Repository("list/app") + ":v1"
	ours, theirs := release.Project{ID: "7101", Path: "team/ours"}, release.Project{ID: "7102", Path: "team/theirs"}
	web, api, other := uniqueApp("web"), uniqueApp("api"), uniqueApp("oth")
	for _, app := range []string{web, api, other} {
		t.Cleanup(func() { cleanupApp(t, cs, app) })
	}
	as := func(p release.Project) *release.Configuration {
		cfg, err := release.NewConfiguration(env.AdminConfig(), release.WithProject(p))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	deployNoWait(t, as(ours), web, sha("a1"), image)
	time.Sleep(1100 * time.Millisecond) // "newest first" reads creation times, in whole seconds
	deployNoWait(t, as(ours), web, sha("a2"), image)
	deployNoWait(t, as(ours), api, sha("b1"), image)
	deployNoWait(t, as(theirs), other, sha("c1"), image)
	p := release.NewPromote(as(ours))
	p.Hosts = release.Hosts{Domain: "example.com"}
	if _, err := p.Run(context.Background(), names(t, web, sha("a1"))); err != nil {
		t.Fatal(err)
	}

	got, err := release.NewList(as(ours)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		app, short string
		live       bool
	}
	var rows []row
	for _, c := range got {
		if c.App == web || c.App == api || c.App == other { // the suite's other tests run beside
			rows = append(rows, row{c.App, c.Short, c.Live})
		}
		if c.Status != "deployed" {
			t.Errorf("%s %s: status %q, want deployed", c.App, c.Short, c.Status)
		}
	}
	// By app name, then newest first.
	want := []row{{api, sha("b1")[:8], false}, {web, sha("a2")[:8], false}, {web, sha("a1")[:8], true}}
	if api > web {
		want = []row{{web, sha("a2")[:8], false}, {web, sha("a1")[:8], true}, {api, sha("b1")[:8], false}}
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}

	// No project: every project's apps.
	all, err := release.NewList(as(release.Project{})).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range all {
		seen[c.App] = true
	}
	if !seen[web] || !seen[api] || !seen[other] {
		t.Errorf("without a project: apps %v, want %s, %s and %s among them", seen, web, api, other)
	}
}

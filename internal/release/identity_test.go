package release_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
)

// withProject returns a copy of the fixture acting for another project,
// on the same app name and cluster.
func (f *deployFixture) withProject(t *testing.T, p release.Project) *deployFixture {
	t.Helper()
	cfg, err := release.NewConfiguration(f.env.AdminConfig(), release.WithProject(p))
	if err != nil {
		t.Fatal(err)
	}
	g := *f
	g.cfg = cfg
	return &g
}

// namespaceNames lists the app's namespaces.
func (f *deployFixture) namespaceNames(t *testing.T) []string {
	t.Helper()
	nss, err := f.cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: release.LabelApp + "=" + f.app})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp == nil {
			out = append(out, ns.Name)
		}
	}
	return out
}

// TestTwoProjectsCannotTouchEachOthersApp: group-a/api and group-b/api both
// named "api". The second project is refused every operation, exit 2 with
// the owner named, and nothing of the first project's changes. With no
// project (an operator at a terminal) the app can be read, and every change
// is refused naming --project-id of the owner.
func TestTwoProjectsCannotTouchEachOthersApp(t *testing.T) {
	base := newDeployFixture(t)
	a := base.withProject(t, release.Project{ID: "101", Path: "group-a/api"})
	b := base.withProject(t, release.Project{ID: "202", Path: "group-b/api"})
	local := base.withProject(t, release.Project{})

	a.deployReady(t, shaA)
	if _, err := a.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns, err := a.cs.CoreV1().Namespaces().Get(ctx, a.app+"-production", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels[release.LabelProject] != "101" || ns.Annotations[release.AnnotationProjectPath] != "group-a/api" {
		t.Errorf("production namespace labels %v annotations %v, want project 101 group-a/api", ns.Labels, ns.Annotations)
	}
	before := a.namespaceNames(t)

	for _, other := range []struct {
		name string
		f    *deployFixture
		fix  string // what the refusal tells to do
		read bool   // list and status work
	}{
		{"another project", b, "choose another app name with --app", false},
		{"local use", local, "pass --project-id 101", true},
	} {
		t.Run(other.name, func(t *testing.T) {
			o := other.f
			bn := names(t, o.app, shaB)
			an := names(t, o.app, shaA)
			writes := map[string]func() error{
				"deploy a new commit":  func() error { _, err := o.deploy(t, shaB); return err },
				"re-deploy its commit": func() error { _, err := o.deploy(t, shaA); return err },
				"promote":              func() error { _, err := o.promote(t, shaA); return err },
				"rollback":             func() error { _, err := release.NewRollback(o.cfg).Run(ctx, an, ""); return err },
				"delete":               func() error { _, err := release.NewDelete(o.cfg).Run(ctx, an); return err },
				"delete a new commit":  func() error { _, err := release.NewDelete(o.cfg).Run(ctx, bn); return err },
				"prune": func() error {
					p := release.NewPrune(o.cfg)
					p.Keep = 1
					_, err := p.Run(ctx, an)
					return err
				},
			}
			reads := map[string]func() (string, error){
				"list": func() (string, error) {
					cs, err := release.NewList(o.cfg).Run(ctx, an)
					if len(cs) != 1 {
						return "", err
					}
					return cs[0].Short, err
				},
				"status": func() (string, error) {
					p, err := release.NewStatus(o.cfg).Production(ctx, an)
					if p == nil {
						return "", err
					}
					return p.SHA, err
				},
				"status of a commit": func() (string, error) {
					c, err := release.NewStatus(o.cfg).Commit(ctx, an)
					if c == nil {
						return "", err
					}
					return c.Short, err
				},
				"check": func() (string, error) {
					v, err := release.NewStatus(o.cfg).Check(ctx, an)
					if len(v) > 0 {
						return "", fmt.Errorf("violations %v", v)
					}
					return "aaaaaaaa", err
				},
			}
			refused := func(op string, err error) {
				t.Helper()
				if !release.IsUsage(err) || !strings.Contains(err.Error(), "belongs to project group-a/api (id 101)") || !strings.Contains(err.Error(), other.fix) {
					t.Errorf("%s: err = %v; want a usage error naming the owner group-a/api and %q", op, err, other.fix)
				}
			}
			for op, run := range writes {
				refused(op, run())
			}
			for op, run := range reads {
				got, err := run()
				switch {
				case !other.read:
					refused(op, err)
				case err != nil || got != "aaaaaaaa":
					t.Errorf("%s with no project: %q, %v; want the owner's commit aaaaaaaa", op, got, err)
				}
			}
		})
	}
	if after := a.namespaceNames(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("namespaces of the app changed from %v to %v", before, after)
	}
	if live := a.live(t); live.SHA != "aaaaaaaa" || live.Revision != 1 {
		t.Errorf("production changed to %s revision %d", live.SHA, live.Revision)
	}
	// The owner still works.
	a.deployReady(t, shaB)
	if _, err := a.promote(t, shaB); err != nil {
		t.Errorf("the owning project's promote: %v", err)
	}
}

// TestOneCommitOneRelease: any SHA length names the same release; a 7
// character prefix of two commits is refused listing them; a second
// commit with the same first 8 characters is refused.
func TestOneCommitOneRelease(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	full := "abcdef1200000000000000000000000000000001"
	twin := "abcdef1200000000000000000000000000000002"   // same first 8
	cousin := "abcdef1300000000000000000000000000000003" // same first 7
	f.deployReady(t, full)

	for _, sha := range []string{"abcdef1", "abcdef12", full} {
		cm, err := release.NewStatus(f.cfg).Commit(ctx, names(t, f.app, sha))
		if err != nil || cm.Release != f.app+"-abcdef12" || cm.SHA != full {
			t.Errorf("status --sha %s = %+v, %v; want release %s-abcdef12 with the full SHA", sha, cm, err, f.app)
		}
	}
	// A deploy given the short SHA keeps the full one it was deployed with.
	cm, err := f.deploy(t, "abcdef12", func(d *release.Deploy) { d.Wait = false })
	if err != nil || cm.SHA != full || cm.Revision != 2 {
		t.Errorf("re-deploy with 8 characters = %+v, %v; want revision 2 of the same commit, full SHA kept", cm, err)
	}

	if _, err := f.deploy(t, twin); !release.IsUsage(err) || !strings.Contains(err.Error(), "another commit with the same first 8 characters") {
		t.Errorf("deploy of a second commit sharing the short SHA: err = %v, want a usage error", err)
	}
	if _, err := f.deploy(t, "1234567"); !release.IsUsage(err) || !strings.Contains(err.Error(), "needs at least 8 characters") {
		t.Errorf("deploy of a new commit by 7 characters: err = %v, want a usage error", err)
	}

	f.deployReady(t, cousin)
	_, err = release.NewDelete(f.cfg).Run(ctx, names(t, f.app, "abcdef1"))
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "matches 2 deployed commits") || !strings.Contains(err.Error(), full) || !strings.Contains(err.Error(), cousin) {
		t.Errorf("delete by an ambiguous prefix: err = %v, want a usage error listing both commits", err)
	}
	if got := f.namespaceNames(t); len(got) != 2 {
		t.Errorf("namespaces after refused delete: %v, want both commits", got)
	}

	// Deleting by 7 characters deletes the one commit they name: not
	// "already gone" with the namespace left behind.
	d, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, cousin[:8]))
	if err != nil || d.Gone || d.Release != f.app+"-abcdef13" {
		t.Fatalf("delete by 8 characters = %+v, %v", d, err)
	}
	d, err = release.NewDelete(f.cfg).Run(ctx, names(t, f.app, "abcdef1"))
	if err != nil || d.Gone || d.Release != f.app+"-abcdef12" {
		t.Errorf("delete by 7 characters = %+v, %v; want release %s-abcdef12 deleted", d, err, f.app)
	}
}

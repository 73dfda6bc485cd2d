package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestPruneCLI: prune as a scheduled job runs it, with the branch list
// `git ls-remote --heads origin` writes; no policy, or an empty list, is
// exit 2 with nothing changed; --dry-run -o json prints the plan only.
func TestPruneCLI(t *testing.T) {
	env := testenv.Get(t)
	appName := uniqueName("prune")
	shaA := "aaaaaaaa11111111111111111111111111111111"
	shaB := "bbbbbbbb22222222222222222222222222222222"
	base := func(sha, ref string) map[string]string {
		return with(gitlabEnv(t, env, appName, sha), "SHIPPER_RESOLVE", "false",
			"SHIPPER_IMAGE_REF", env.Registry.Repository("group/"+appName)+":"+sha[:8], "CI_COMMIT_REF_SLUG", ref)
	}
	for _, d := range []struct{ sha, ref string }{{shaA, "feature-x"}, {shaB, "main"}} {
		if r := runBinary(t, base(d.sha, d.ref), "deploy"); r.code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s", d.sha[:8], r.code, r.stderr)
		}
	}
	e := base(shaB, "main")
	dir := t.TempDir()
	empty, lsRemote := filepath.Join(dir, "empty.txt"), filepath.Join(dir, "branches.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lsRemote, []byte(shaB+"\trefs/heads/main\n"+shaA[:39]+"c\trefs/heads/Release/2.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"prune"}, {"prune", "--branch-exists-file", empty}, {"prune", "--keep", "-1"}} {
		r := runBinary(t, e, args...)
		if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("shipper %v: exit %d, stderr %q; want exit 2 and one line", args, r.code, r.stderr)
		}
	}
	r := runBinary(t, e, "prune", "--branch-exists-file", lsRemote, "--dry-run", "-o", "json")
	if r.code != 0 {
		t.Fatalf("dry run: exit %d\n%s", r.code, r.stderr)
	}
	var plan release.Pruned
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("dry run JSON: %v\n%s", err, r.stdout)
	}
	actions := map[string]string{}
	for _, it := range plan.Items {
		actions[it.Short] = it.Action
	}
	if !plan.DryRun || actions["aaaaaaaa"] != "delete" || actions["bbbbbbbb"] != "keep" {
		t.Errorf("dry-run plan %+v: want A (branch gone) delete, B keep", plan)
	}
	if got := activeNamespaces(t, env, appName); len(got) != 2 {
		t.Errorf("dry run changed the cluster: namespaces %v", got)
	}
	r = runBinary(t, e, "prune", "--branch-exists-file", lsRemote)
	if r.code != 0 || !strings.Contains(r.stdout, "1 deleted, 0 failed") || !strings.Contains(r.stderr, "1/1") {
		t.Fatalf("prune: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	got := activeNamespaces(t, env, appName)
	if len(got) != 1 || !strings.HasSuffix(got[0], "-bbbbbbbb") {
		t.Errorf("after prune: namespaces %v, want only B's", got)
	}
}

// activeNamespaces are the app's namespaces not being deleted (the harness
// runs no namespace controller: a deleted namespace stays Terminating).
func activeNamespaces(t testing.TB, env *testenv.Env, app string) []string {
	t.Helper()
	var out []string
	for _, ns := range namespacesOf(t, env, app) {
		if ns.DeletionTimestamp == nil {
			out = append(out, ns.Name)
		}
	}
	return out
}

package integration

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestDatabaseThroughTheCLI: with SHIPPER_DATABASE_URL and
// SHIPPER_DATABASE_TEMPLATE, deploy gives the commit a copy of the
// template, delete drops it; neither the admin's
// password nor the commit's appears in any output, even with -v.
func TestDatabaseThroughTheCLI(t *testing.T) {
	env := testenv.Get(t)
	pg := testenv.GetPostgres(t)
	ctx := context.Background()
	const adminPassword = "cli-admin-s3cr3t-5b1d"
	admin := cliDatabase(t, pg, "cli_admin", adminPassword, "cli_tpl")
	appName := uniqueName("db")
	sha := "db0db0db11111111111111111111111111111111"
	e := with(gitlabEnv(t, env, appName, sha), "SHIPPER_DATABASE_URL", admin, "SHIPPER_DATABASE_TEMPLATE", "cli_tpl", "SHIPPER_VERBOSE", "true")
	ns := appName + "-db0db0db"
	var outputs []string
	run := func(verb string) {
		t.Helper()
		r := runBinary(t, e, verb)
		outputs = append(outputs, r.stdout+r.stderr)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", verb, r.code, r.stderr)
		}
	}
	run("package")
	run("deploy")
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, ns+"-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	password := string(s.Data["PGPASSWORD"])
	got := queryOne(t, pg.URL(ns, password, ns), "SELECT v FROM t")
	if got != "from the template" {
		t.Errorf("the commit's database holds %q, want the template's row", got)
	}
	run("delete")
	if n := queryOne(t, pg.AdminURL("postgres"), "SELECT count(*)::text FROM pg_database WHERE datname = '"+ns+"'"); n != "0" {
		t.Errorf("after delete, %s databases %s", n, ns)
	}
	for _, out := range outputs {
		if password == "" || strings.Contains(out, password) || strings.Contains(out, adminPassword) || strings.Contains(out, "postgres://") {
			t.Errorf("an output holds a password or a database URL:\n%s", out)
		}
	}
}

// cliDatabase sets up an admin role and a template it owns on pg, holding
// one row in table t, and returns the admin's URL.
func cliDatabase(t *testing.T, pg *testenv.Postgres, role, password, template string) string {
	t.Helper()
	admin, err := pg.ShipperAdmin(context.Background(), role, password, template, "CREATE TABLE t (v text); INSERT INTO t VALUES ('from the template')")
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

// TestStressKill9Database kills deploy and delete of commits with a
// database at points spread over their run (before, while and after the
// role and database are made or dropped); the next run of the same
// command succeeds, the commit's Secret reaches its database, the
// invariants hold (no database left without its commit), and once every
// killed commit is deleted no database or role of theirs is left.
func TestStressKill9Database(t *testing.T) {
	ctx := context.Background()
	a, engine := newDatabaseStressApp(t, "dbkill")
	cs, err := a.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	reaches := func(sha string) {
		t.Helper()
		ns := a.commit(sha).Namespace
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, ns+"-env", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := queryOne(t, string(s.Data["DATABASE_URL"]), "SELECT v FROM t"); got != "from the template" {
			t.Errorf("commit %s's database holds %q", sha[:8], got)
		}
	}
	start := time.Now()
	a.mustRun(stressSHA(1), "deploy")
	full := time.Since(start)
	points := max(6, 2*stressTrials(t))
	for i := range points {
		after := full * time.Duration(i+1) / time.Duration(points+1)
		sha := stressSHA(10 + i)
		a.killedAfter(after, sha, "deploy")
		t.Logf("deploy killed at %s (a whole one: %s) left: %s", after, full.Round(time.Millisecond), leftBy(t, engine, a, sha))
		a.mustRun(sha, "deploy")
		reaches(sha)
		a.invariants(fmt.Sprintf("after a deploy killed at %s", after))
		a.killedAfter(after, sha, "delete")
		t.Logf("delete killed at %s left: %s", after, leftBy(t, engine, a, sha))
		a.mustRun(sha, "delete")
		a.invariants(fmt.Sprintf("after a delete killed at %s", after))
	}
	found, err := engine.List(ctx, a.names.AppPart, a.vars["CI_PROJECT_ID"])
	if err != nil || len(found) != 1 || found[0].SHA != stressSHA(1)[:8] || !found[0].Database {
		t.Errorf("databases left: %+v, %v; want commit %s's alone", found, err, stressSHA(1)[:8])
	}
}

// leftBy says what commit sha has: namespace, role, database.
func leftBy(t *testing.T, engine database.Engine, a *stressApp, sha string) string {
	t.Helper()
	var out []string
	if nss := namespacesOf(t, a.env, a.names.AppPart); slices.ContainsFunc(nss, func(ns corev1.Namespace) bool {
		return ns.Name == a.commit(sha).Namespace && ns.DeletionTimestamp == nil
	}) {
		out = append(out, "namespace")
	}
	found, err := engine.List(context.Background(), a.names.AppPart, a.vars["CI_PROJECT_ID"])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if f.SHA == sha[:8] {
			out = append(out, "role")
			if f.Database {
				out = append(out, "database")
			}
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

func queryOne(t *testing.T, url, q string) string {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

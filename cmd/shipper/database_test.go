package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	admin, err := pg.ShipperAdmin(ctx, "cli_admin", adminPassword, "cli_tpl", "CREATE TABLE t (v text); INSERT INTO t VALUES ('from the template')")
	if err != nil {
		t.Fatal(err)
	}
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

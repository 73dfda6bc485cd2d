package release_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lib/pq"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// The shared PostgreSQL, with shipper's admin and template set up once.
var dbSetup struct {
	sync.Once
	pg    *testenv.Postgres
	admin string
	err   error
}

const dbAdminPassword = "release-admin-pw-81c2"

func dbServer(t *testing.T) (*testenv.Postgres, string) {
	t.Helper()
	pg := testenv.GetPostgres(t)
	dbSetup.Do(func() {
		dbSetup.pg = pg
		dbSetup.admin, dbSetup.err = pg.ShipperAdmin(context.Background(), "shipper_admin", dbAdminPassword, "tpl",
			"CREATE TABLE visits (id serial PRIMARY KEY, note text); INSERT INTO visits (note) VALUES ('template')")
	})
	if dbSetup.err != nil {
		t.Fatal(dbSetup.err)
	}
	return pg, dbSetup.admin
}

// dbFixture is a deployFixture whose Configuration gives every commit a
// database on the shared PostgreSQL.
type dbFixture struct {
	*deployFixture
	pg     *testenv.Postgres
	engine database.Engine
}

func newDBFixture(t *testing.T) *dbFixture {
	t.Helper()
	pg, admin := dbServer(t)
	f := newDeployFixture(t)
	engine, err := database.Open(database.Config{URL: admin, Template: "tpl", Host: "db.example.internal:6432"})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg, err = release.NewConfiguration(f.env.AdminConfig(), release.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))),
		release.WithDatabase(engine))
	if err != nil {
		t.Fatal(err)
	}
	return &dbFixture{deployFixture: f, pg: pg, engine: engine}
}

// envOf is the commit's env Secret, and the DATABASE_URL that reaches its
// database from the tests (the pods' host is another).
func (f *dbFixture) envOf(t *testing.T, short string) (map[string]string, string) {
	t.Helper()
	ns := f.app + "-" + short
	s, err := f.cs.CoreV1().Secrets(ns).Get(context.Background(), ns+"-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range s.Data {
		env[k] = string(v)
	}
	return env, f.pg.URL(env["PGUSER"], env["PGPASSWORD"], env["PGDATABASE"])
}

func dbQuery(url, q string) (string, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v sql.NullString
	err = db.QueryRow(q).Scan(&v)
	return v.String, err
}

// databasesLeft are the databases and roles named like the app's commits.
func (f *dbFixture) databasesLeft(t *testing.T) string {
	t.Helper()
	got, err := dbQuery(f.pg.AdminURL("postgres"), fmt.Sprintf(`SELECT COALESCE(string_agg(n, ',' ORDER BY n), '') FROM (
		SELECT 'db:' || datname AS n FROM pg_database WHERE datname LIKE '%[1]s-%%'
		UNION ALL SELECT 'role:' || rolname FROM pg_roles WHERE rolname LIKE '%[1]s-%%') x`, f.app))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDatabasePerCommit: a deploy gives the commit a copy of the template,
// its variables in the commit's Secret (never in Helm's values, records
// or the log); a re-deploy keeps the data and the Secret, so the pods do
// not roll; another commit's role cannot open it.
func TestDatabasePerCommit(t *testing.T) {
	f := newDBFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)
	if _, err := f.deploy(t, testSHA); err != nil {
		t.Fatalf("deploy: %v\n%s", err, f.logs)
	}
	env, url := f.envOf(t, "7c77eb36")
	if env["PGHOST"] != "db.example.internal" || env["PGPORT"] != "6432" || env["PGDATABASE"] != ns || env["PGUSER"] != ns ||
		!strings.HasPrefix(env["DATABASE_URL"], "postgres://"+ns+":"+env["PGPASSWORD"]+"@db.example.internal:6432/"+ns) {
		t.Errorf("the pods' variables %v: want the commit's role and database on --database-host", keysOf(env))
	}
	if got, err := dbQuery(url, "SELECT note FROM visits"); err != nil || got != "template" {
		t.Fatalf("the commit's database: %q, %v; want the template's row", got, err)
	}
	if _, err := dbQuery(url, "INSERT INTO visits (note) VALUES ('written by the preview') RETURNING note"); err != nil {
		t.Fatal(err)
	}
	dep, err := f.cs.AppsV1().Deployments(ns).Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if from := dep.Spec.Template.Spec.Containers[0].EnvFrom; len(from) != 1 || from[0].SecretRef.Name != ns+"-env" {
		t.Errorf("envFrom %+v, want the Secret %s-env", from, ns)
	}
	f.requireNowhere(t, ns, env["PGPASSWORD"])
	version := dep.Spec.Template.Annotations["shipper.dev/env-secret-version"]

	if _, err := f.deploy(t, testSHA); err != nil {
		t.Fatalf("re-deploy: %v", err)
	}
	again, _ := f.envOf(t, "7c77eb36")
	if again["DATABASE_URL"] != env["DATABASE_URL"] {
		t.Error("a re-deploy changed the commit's credentials")
	}
	if got, err := dbQuery(url, "SELECT count(*)::text FROM visits"); err != nil || got != "2" {
		t.Errorf("after a re-deploy: %s rows, %v; want the preview's row kept (2)", got, err)
	}
	dep, _ = f.cs.AppsV1().Deployments(ns).Get(context.Background(), ns, metav1.GetOptions{})
	if v := dep.Spec.Template.Annotations["shipper.dev/env-secret-version"]; v != version {
		t.Errorf("env Secret version %s -> %s: an unchanged database rolled the pods", version, v)
	}

	other := f.app + "-3f9a1c2e"
	simulate(t, f.cs, other, other, rolloutReady)
	if _, err := f.deploy(t, sha("3f9a1c2e")); err != nil {
		t.Fatal(err)
	}
	envB, _ := f.envOf(t, "3f9a1c2e")
	_, err = dbQuery(f.pg.URL(envB["PGUSER"], envB["PGPASSWORD"], ns), "SELECT count(*) FROM visits")
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("commit 3f9a1c2e's role on 7c77eb36's database: %v, want permission denied", err)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// requireNowhere: secret is in no Helm value (helm get values --all), no
// release record's labels and no log line.
func (f *dbFixture) requireNowhere(t *testing.T, ns, secret string) {
	t.Helper()
	gv := helmaction.NewGetValues(f.helm(t, ns))
	gv.AllValues = true
	vals, err := gv.Run(ns)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(vals)
	for what, text := range map[string]string{"Helm's values": string(b), "the log": f.logs.String()} {
		if strings.Contains(text, secret) || strings.Contains(text, "DATABASE_URL") {
			t.Errorf("%s hold the database's password or URL", what)
		}
	}
}

// TestDatabaseGoesWithTheCommit: delete drops the commit's database and
// role, ending the sessions open on it; prune too; a database left
// without its commit (deleted without the database settings) is a problem
// status names and the next prune drops; production's database, and any
// other not shipper's, is never touched.
func TestDatabaseGoesWithTheCommit(t *testing.T) {
	f := newDBFixture(t)
	ctx := context.Background()
	for i, s := range []string{"11111111", "22222222", "33333333", "44444444"} {
		f.deployQuick(t, sha(s), "", time.Now().Add(time.Duration(i-4)*time.Hour))
	}
	// Production's database (its own, not shipper's), on the same server.
	if _, err := dbQuery(f.pg.AdminURL("postgres"), fmt.Sprintf(`CREATE DATABASE %s`, pq.QuoteIdentifier(f.app+"-production"))); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	_, url := f.envOf(t, "11111111")
	held, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	conn, err := held.Conn(ctx) // a pod's open session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, sha("11111111"))); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if conn.PingContext(ctx) == nil {
		t.Error("a session on the deleted commit's database survived")
	}
	// A delete job without the database settings leaves 22222222's.
	plain, _ := newConfig(t, f.env)
	if _, err := release.NewDelete(plain).Run(ctx, names(t, f.app, sha("22222222"))); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("db:%[1]s-22222222,db:%[1]s-33333333,db:%[1]s-44444444,db:%[1]s-production,role:%[1]s-22222222,role:%[1]s-33333333,role:%[1]s-44444444", f.app)
	if got := f.databasesLeft(t); got != want {
		t.Errorf("after the deletes: %s\nwant %s", got, want)
	}
	problems, err := release.NewStatus(f.cfg).Check(ctx, names(t, f.app, ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Detail, f.app+"-22222222") || !strings.Contains(problems[0].Repair, "shipper prune") {
		t.Errorf("status problems %v, want 22222222's database left without its commit, repaired by prune", problems)
	}
	res, err := f.prune(t, func(p *release.Prune) { p.Keep = 1 })
	if err != nil {
		t.Fatalf("prune: %v\n%+v", err, res)
	}
	if got, want := plan(res), map[string]string{"22222222": "deleted", "33333333": "deleted", "44444444": "keep"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("prune: %v, want %v", got, want)
	}
	want = fmt.Sprintf("db:%[1]s-44444444,db:%[1]s-production,role:%[1]s-44444444", f.app)
	if got := f.databasesLeft(t); got != want {
		t.Errorf("after prune: %s\nwant %s", got, want)
	}
	if problems, err := release.NewStatus(f.cfg).Check(ctx, names(t, f.app, "")); err != nil || len(problems) != 0 {
		t.Errorf("status after prune: %v, %v; want no problem", problems, err)
	}
}

// TestDatabaseNotShippersIsRefusedAndKept: a database with the commit's
// name that shipper did not make fails the deploy and survives the delete.
func TestDatabaseNotShippersIsRefusedAndKept(t *testing.T) {
	f := newDBFixture(t)
	ctx := context.Background()
	ns := f.app + "-7c77eb36"
	if _, err := dbQuery(f.pg.AdminURL("postgres"), "CREATE DATABASE "+pq.QuoteIdentifier(ns)); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	simulate(t, f.cs, ns, ns, rolloutReady)
	_, err := f.deploy(t, testSHA)
	if err == nil || !strings.Contains(err.Error(), "not shipper's") {
		t.Errorf("deploy over a database shipper did not make: %v, want it refused", err)
	}
	if _, err := release.NewDelete(f.cfg).Run(ctx, names(t, f.app, testSHA)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if got := f.databasesLeft(t); got != "db:"+ns {
		t.Errorf("after delete: %s, want the database shipper did not make kept", got)
	}
	if !strings.Contains(f.logs.String(), "not shipper's alone") {
		t.Errorf("the delete did not say it left the database:\n%s", f.logs)
	}
}

// TestDatabaseVariableClashIsBadInput: a K8S_SECRET_DATABASE_URL beside
// the database settings is refused before anything changes.
func TestDatabaseVariableClashIsBadInput(t *testing.T) {
	f := newDBFixture(t)
	_, err := f.deploy(t, testSHA, func(d *release.Deploy) {
		d.Secrets, d.SecretPrefix = map[string]string{"DATABASE_URL": "postgres://mine"}, "K8S_SECRET_"
	})
	if !release.IsUsage(err) || !strings.Contains(err.Error(), "K8S_SECRET_DATABASE_URL") || strings.Contains(err.Error(), "postgres://mine") {
		t.Errorf("deploy: %v; want a usage error naming K8S_SECRET_DATABASE_URL, not its value", err)
	}
	if left := f.namespacesLeft(t); len(left) != 0 {
		t.Errorf("namespaces %v made before the refusal", left)
	}
}

// TestDatabaseTenDeploysAtOnce: ten commits deployed at once, each
// cloning the one template, all get their database.
func TestDatabaseTenDeploysAtOnce(t *testing.T) {
	f := newDBFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() {
			d := release.NewDeploy(f.cfg)
			d.Hosts, d.Wait, d.Timeout = release.Hosts{Domain: "preview.example.com"}, false, time.Minute
			_, errs[i] = d.Run(context.Background(), names(t, f.app, sha(fmt.Sprintf("a%07d", i))), f.image)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deploy %d: %v", i, err)
		}
	}
	found, err := f.engine.List(context.Background(), f.app, "")
	if err != nil || len(found) != 10 {
		t.Errorf("databases: %d, %v; want 10", len(found), err)
	}
	for _, fd := range found {
		if !fd.Database {
			t.Errorf("%s has no database", fd.Name)
		}
	}
}

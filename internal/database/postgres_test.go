package database_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// server is the shared PostgreSQL with shipper's least-privilege admin
// (LOGIN CREATEDB CREATEROLE, as docs/database.md sets it up) and a
// template that admin owns.
type server struct {
	pg       *testenv.Postgres
	admin    string // the admin's URL to database postgres
	template string
}

var setup struct {
	sync.Once
	s   *server
	err error
}

const adminRole, adminPassword = "shipper_admin", "admin-pw-4f9c1e"

// templateSQL is the template's content: a table with a serial key and a
// row, a view, a function, an enum, and a schema of its own.
const templateSQL = `
CREATE TYPE mood AS ENUM ('ok', 'meh');
CREATE TABLE visits (id serial PRIMARY KEY, note text NOT NULL, m mood DEFAULT 'ok');
INSERT INTO visits (note) VALUES ('from the template');
CREATE VIEW notes AS SELECT note FROM visits;
CREATE FUNCTION visit_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM visits';
CREATE SCHEMA app;
CREATE TABLE app.settings (k text PRIMARY KEY, v text);
INSERT INTO app.settings VALUES ('theme', 'dark');`

func getServer(t *testing.T) *server {
	t.Helper()
	pg := testenv.GetPostgres(t)
	setup.Do(func() { setup.s, setup.err = newServer(pg) })
	if setup.err != nil {
		t.Fatal(setup.err)
	}
	return setup.s
}

func newServer(pg *testenv.Postgres) (*server, error) {
	admin, err := pg.ShipperAdmin(context.Background(), adminRole, adminPassword, "tpl", templateSQL)
	return &server{pg: pg, admin: admin, template: "tpl"}, err
}

func execAll(ctx context.Context, url string, stmts ...string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (s *server) engine(t *testing.T, mod func(*database.Config)) database.Engine {
	t.Helper()
	cfg := database.Config{URL: s.admin, Template: s.template, CloneWait: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	e, err := database.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// commit names a commit of an app of the test's own.
func commit(app, sha string) database.Commit {
	return database.Commit{Name: app + "-" + sha, App: app, SHA: sha, Project: "101"}
}

// query runs a one-value query with the pods' DATABASE_URL.
func query(t *testing.T, url, q string) (string, error) {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v sql.NullString
	err = db.QueryRowContext(context.Background(), q).Scan(&v)
	return v.String, err
}

func mustQuery(t *testing.T, url, q string) string {
	t.Helper()
	v, err := query(t, url, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestEnsureClonesTheTemplateForTheCommitsRole(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	c := commit("clone", "7c77eb36")
	env := ensure(t, e, c)
	for _, k := range e.Vars() {
		if env[k] == "" {
			t.Errorf("%s is empty", k)
		}
	}
	if env["PGDATABASE"] != c.Name || env["PGUSER"] != c.Name || env["PGSSLMODE"] != "disable" {
		t.Errorf("env %v: want database and user %s, sslmode disable", withoutPassword(env), c.Name)
	}
	url := env["DATABASE_URL"]
	if got := mustQuery(t, url, "SELECT string_agg(note, ',') FROM visits"); got != "from the template" {
		t.Errorf("visits: %q, want the template's row", got)
	}
	// The role owns what the template held: the app and its migrations
	// write and change it.
	for _, q := range []string{
		"SELECT visit_count()::text",
		"INSERT INTO visits (note, m) VALUES ('from the commit', 'meh') RETURNING id::text",
		"SELECT v FROM app.settings",
		"SELECT count(*)::text FROM notes",
		"ALTER TABLE visits ADD COLUMN at timestamptz",
		"CREATE TABLE own (id int)",
		"SELECT current_user::text",
	} {
		if _, err := query(t, url, q); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("as the commit's role: %s: %v", q, err)
		}
	}
	if got := mustQuery(t, url, "SELECT string_agg(DISTINCT pg_get_userbyid(relowner)::text, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'app')"); got != c.Name {
		t.Errorf("owners of the clone's relations: %q, want %q alone", got, c.Name)
	}
	// And the template is as it was.
	if got := mustQuery(t, s.pg.AdminURL(s.template), "SELECT count(*)::text FROM visits"); got != "1" {
		t.Errorf("template's visits: %s rows, want 1", got)
	}
}

// ensure is Ensure of c, which is dropped when t ends.
func ensure(t *testing.T, e database.Engine, c database.Commit) map[string]string {
	t.Helper()
	env, err := e.Ensure(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.Drop(context.Background(), c) })
	return env
}

func withoutPassword(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if k != "PGPASSWORD" && k != "DATABASE_URL" {
			out[k] = v
		}
	}
	return out
}

func TestEnsureAgainKeepsTheDataAndThePassword(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	c := commit("again", "3f9a1c2e")
	first := ensure(t, e, c)
	mustQuery(t, first["DATABASE_URL"], "INSERT INTO visits (note) VALUES ('kept') RETURNING id::text")
	second, err := e.Ensure(ctx, c, first)
	if err != nil {
		t.Fatal(err)
	}
	if second["DATABASE_URL"] != first["DATABASE_URL"] {
		t.Error("a re-deploy changed the password the running pods use")
	}
	if got := mustQuery(t, second["DATABASE_URL"], "SELECT string_agg(note, ',' ORDER BY id) FROM visits"); got != "from the template,kept" {
		t.Errorf("after a re-deploy: %q, want the row written before kept", got)
	}
	// Without the previous Secret (deleted by hand, or a job killed
	// before it was written) the role gets a new password; data stays.
	third, err := e.Ensure(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if third["PGPASSWORD"] == first["PGPASSWORD"] {
		t.Error("no previous password, yet the same one")
	}
	if _, err := query(t, first["DATABASE_URL"], "SELECT 1"); err == nil {
		t.Error("the old password still logs in")
	}
	if got := mustQuery(t, third["DATABASE_URL"], "SELECT count(*)::text FROM visits"); got != "2" {
		t.Errorf("visits: %s rows, want 2", got)
	}
}

func TestARoleReachesItsOwnDatabaseOnly(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	a, b := commit("iso", "aaaaaaaa"), commit("iso", "bbbbbbbb")
	envA := ensure(t, e, a)
	envB := ensure(t, e, b)
	mustQuery(t, envB["DATABASE_URL"], "INSERT INTO visits (note) VALUES ('secret of b') RETURNING id::text")
	for _, db := range []string{b.Name, s.template} {
		_, err := query(t, s.pg.URL(a.Name, envA["PGPASSWORD"], db), "SELECT string_agg(note, ',') FROM visits")
		var pe *pq.Error
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("A's role on database %s: %v, want permission denied (42501)", db, err)
		}
	}
	// A's role can do nothing to B's role or database from its own.
	for _, q := range []string{
		fmt.Sprintf("ALTER ROLE %s PASSWORD 'x'", pq.QuoteIdentifier(b.Name)),
		fmt.Sprintf("DROP DATABASE %s", pq.QuoteIdentifier(b.Name)),
		fmt.Sprintf("GRANT %s TO CURRENT_USER", pq.QuoteIdentifier(b.Name)),
		"CREATE DATABASE another",
		"CREATE ROLE another",
	} {
		if _, err := query(t, envA["DATABASE_URL"], q); err == nil || errors.Is(err, sql.ErrNoRows) {
			t.Errorf("as A's role, %s succeeded", q)
		}
	}
}

func TestDropEndsSessionsAndRemovesDatabaseAndRole(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	c := commit("drop", "0b1c2d3e")
	env, err := e.Ensure(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	held, err := sql.Open("postgres", env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	conn, err := held.Conn(ctx) // a session the pods hold open
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if dropped, err := e.Drop(ctx, c); err != nil || !dropped {
		t.Fatalf("Drop: %t, %v", dropped, err)
	}
	if err := conn.PingContext(ctx); err == nil {
		t.Error("the open session survived its database")
	}
	got := mustQuery(t, s.pg.AdminURL("postgres"), fmt.Sprintf(
		"SELECT (SELECT count(*) FROM pg_database WHERE datname = '%[1]s') + (SELECT count(*) FROM pg_roles WHERE rolname = '%[1]s')", c.Name))
	if got != "0" {
		t.Errorf("%s databases and roles left, want 0", got)
	}
	if dropped, err := e.Drop(ctx, c); err != nil || dropped {
		t.Errorf("Drop of nothing: %t, %v; want false, nil", dropped, err)
	}
}

func TestNeverTouchesWhatShipperDidNotMake(t *testing.T) {
	s := getServer(t)
	ctx := context.Background()
	e := s.engine(t, nil)
	superuser := s.pg.AdminURL("postgres")
	// A database of the commit's name made by someone else (production's
	// own, a colleague's), and one whose role is unmarked.
	if err := execAll(ctx, superuser,
		`CREATE DATABASE "own-deadbeef"`,
		`CREATE ROLE "own-cafebabe" LOGIN`,
		`CREATE DATABASE "own-cafebabe" OWNER "own-cafebabe"`,
	); err != nil {
		t.Fatal(err)
	}
	for _, c := range []database.Commit{commit("own", "deadbeef"), commit("own", "cafebabe"), {Name: s.template, App: "own", SHA: "tpl"}, {Name: "postgres", App: "own"}} {
		if _, err := e.Drop(ctx, c); !isNotOurs(err) {
			t.Errorf("Drop %s: %v, want NotOursError", c.Name, err)
		}
		if _, err := e.Ensure(ctx, c, nil); !isNotOurs(err) {
			t.Errorf("Ensure %s: %v, want NotOursError", c.Name, err)
		}
	}
	// Another project's commit of the same app name: listed to neither
	// the other project nor its local use, dropped by neither.
	c := commit("own", "12345678")
	ensure(t, e, c)
	for _, project := range []string{"202", ""} {
		other := c
		other.Project = project
		if _, err := e.Drop(ctx, other); !isNotOurs(err) {
			t.Errorf("project %q dropping 101's: %v, want NotOursError", project, err)
		}
		if found, err := e.List(ctx, "own", project); err != nil || len(found) != 0 {
			t.Errorf("List for project %q: %v, %v; want none", project, found, err)
		}
	}
	got := mustQuery(t, superuser, `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'own-%' OR datname IN ('tpl', 'postgres')`)
	if want := "own-12345678,own-cafebabe,own-deadbeef,postgres,tpl"; got != want {
		t.Errorf("databases %s, want %s", got, want)
	}
	if found, err := e.List(ctx, "own", "101"); err != nil || len(found) != 1 || found[0].Name != c.Name || !found[0].Database {
		t.Errorf("List: %+v, %v; want %s alone", found, err, c.Name)
	}
}

func isNotOurs(err error) bool {
	var no *database.NotOursError
	return errors.As(err, &no)
}

// TestAKilledJobsLeftoversAreCompletedOrRemoved: a job killed between the
// role and the database leaves a marked role alone, which List reports,
// Ensure completes and Drop removes.
func TestAKilledJobsLeftoversAreCompletedOrRemoved(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	for _, then := range []string{"ensure", "drop"} {
		c := commit("killed-"+then, "5e6f7a8b")
		if _, err := e.Ensure(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		if err := execAll(ctx, s.pg.AdminURL("postgres"), "DROP DATABASE "+pq.QuoteIdentifier(c.Name)); err != nil {
			t.Fatal(err)
		}
		found, err := e.List(ctx, c.App, c.Project)
		if err != nil || len(found) != 1 || found[0].Database {
			t.Fatalf("List: %+v, %v; want the role alone", found, err)
		}
		if then == "ensure" {
			env, err := e.Ensure(ctx, c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustQuery(t, env["DATABASE_URL"], "SELECT count(*)::text FROM visits"); got != "1" {
				t.Errorf("completed clone: %s rows, want the template's 1", got)
			}
		}
		if dropped, err := e.Drop(ctx, c); err != nil || !dropped {
			t.Errorf("Drop: %t, %v", dropped, err)
		}
		if found, err := e.List(ctx, c.App, c.Project); err != nil || len(found) != 0 {
			t.Errorf("after Drop, List: %+v, %v", found, err)
		}
	}
}

func TestTenConcurrentClonesOfOneTemplate(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			c := commit("ten", fmt.Sprintf("%08d", i))
			var env map[string]string
			if env, errs[i] = e.Ensure(ctx, c, nil); errs[i] == nil {
				_, errs[i] = query(t, env["DATABASE_URL"], "SELECT count(*)::text FROM visits")
			}
		})
	}
	wg.Wait()
	t.Logf("10 clones at once: %s", time.Since(start).Round(time.Millisecond))
	for i, err := range errs {
		if err != nil {
			t.Errorf("clone %d: %v", i, err)
		}
	}
	found, err := e.List(ctx, "ten", "101")
	if err != nil || len(found) != 10 {
		t.Errorf("List: %d, %v; want 10", len(found), err)
	}
	for _, f := range found {
		if _, err := e.Drop(ctx, database.Commit{Name: f.Name, App: "ten", SHA: f.SHA, Project: "101"}); err != nil {
			t.Error(err)
		}
	}
}

// TestATemplateInUseIsWaitedForThenNamed: a session on the template
// blocks every copy; Ensure waits, then names it, and succeeds once it
// ends within the wait.
func TestATemplateInUseIsWaitedForThenNamed(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, func(c *database.Config) { c.CloneWait = time.Second })
	ctx := context.Background()
	holder, err := sql.Open("postgres", s.pg.AdminURL(s.template)+"&application_name=psql-by-hand")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := commit("busy", "9a8b7c6d")
	start := time.Now()
	_, err = e.Ensure(ctx, c, nil)
	if err == nil || !strings.Contains(err.Error(), "psql-by-hand") || !strings.Contains(err.Error(), "pid ") || time.Since(start) < time.Second {
		t.Errorf("with a session on the template: %v after %s; want the session named after waiting 1s", err, time.Since(start))
	}
	if strings.Contains(fmt.Sprint(err), adminPassword) {
		t.Error("the error holds the admin's password")
	}
	go func() { time.Sleep(300 * time.Millisecond); conn.Close(); holder.Close() }()
	e = s.engine(t, func(c *database.Config) { c.CloneWait = 10 * time.Second })
	if _, err := e.Ensure(ctx, c, nil); err != nil {
		t.Errorf("once the session ended: %v", err)
	}
	_, _ = e.Drop(ctx, c)
}

// TestHostileNamesAreQuoted: names are identifiers, never SQL.
func TestHostileNamesAreQuoted(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	for _, name := range []string{`x"; DROP ROLE shipper_admin; --`, `it's "quoted"`, `Ünïcode-ß`, `a$shipper$b`} {
		c := database.Commit{Name: name, App: "hostile", SHA: "h", Project: "101"}
		env, err := e.Ensure(ctx, c, nil)
		if err != nil {
			t.Errorf("Ensure %q: %v", name, err)
			continue
		}
		if got := mustQuery(t, env["DATABASE_URL"], "SELECT current_database()::text"); got != name {
			t.Errorf("DATABASE_URL reaches %q, want %q", got, name)
		}
		if dropped, err := e.Drop(ctx, c); err != nil || !dropped {
			t.Errorf("Drop %q: %t, %v", name, dropped, err)
		}
	}
	if got := mustQuery(t, s.pg.AdminURL("postgres"), "SELECT count(*)::text FROM pg_roles WHERE rolname = 'shipper_admin'"); got != "1" {
		t.Fatal("the admin role is gone")
	}
	if _, err := e.Ensure(ctx, database.Commit{Name: strings.Repeat("x", 64), App: "hostile"}, nil); err == nil {
		t.Error("a name PostgreSQL would cut to 63 bytes was taken")
	}
}

// TestSecretsStayOutOfErrors: the admin URL's password in no error.
func TestSecretsStayOutOfErrors(t *testing.T) {
	s := getServer(t)
	const secret = "s3cr3t-Pa55"
	for _, cfg := range []database.Config{
		{URL: "postgres://admin:" + secret + "@host:bad-port/db", Template: "tpl"},
		{URL: "postgres://admin:" + secret + "@[::1/db", Template: "tpl"},
		{URL: "mysql://admin:" + secret + "@host/db", Template: "tpl"},
		{URL: "postgres://admin:" + secret + "@host/db"},
		{URL: "postgres://admin:" + secret + "@host/tpl", Template: "tpl"},
		{URL: "postgres://admin:" + secret + "@host/db", Template: "tpl", Host: "a b"},
	} {
		_, err := database.Open(cfg)
		var ce *database.ConfigError
		if !errors.As(err, &ce) || strings.Contains(err.Error(), secret) {
			t.Errorf("Open: %v; want a ConfigError without the password", err)
		}
	}
	e := s.engine(t, func(c *database.Config) { c.URL = strings.Replace(c.URL, adminPassword, secret, 1) })
	_, err := e.Ensure(context.Background(), commit("wrongpw", "12345678"), nil)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Ensure with a wrong password: %v; want an error without it", err)
	}
}

// TestPostgres15CreateRoleReachesOtherProjectsRoles pins the gap
// docs/database.md describes: on PostgreSQL 15 another project's admin
// (CREATEROLE) can change this project's preview roles, so projects that
// do not trust each other need servers of their own (or PostgreSQL 16,
// which confines CREATEROLE to the roles an admin made). shipper itself
// never touches them: the other project's engine refuses.
func TestPostgres15CreateRoleReachesOtherProjectsRoles(t *testing.T) {
	s := getServer(t)
	ctx := context.Background()
	e := s.engine(t, nil)
	c := commit("shared", "abcdef01")
	ensure(t, e, c)
	if err := execAll(ctx, s.pg.AdminURL("postgres"), "CREATE ROLE other_admin LOGIN CREATEDB CREATEROLE PASSWORD 'other-pw'"); err != nil {
		t.Fatal(err)
	}
	other := s.pg.URL("other_admin", "other-pw", "postgres")
	e2, err := database.Open(database.Config{URL: other, Template: s.template})
	if err != nil {
		t.Fatal(err)
	}
	theirs := c
	theirs.Project = "202"
	if _, err := e2.Drop(ctx, theirs); !isNotOurs(err) {
		t.Errorf("project 202's shipper dropping 101's: %v, want NotOursError", err)
	}
	version := mustQuery(t, other, "SHOW server_version_num")
	for _, q := range []string{
		fmt.Sprintf("ALTER ROLE %s PASSWORD 'taken'", pq.QuoteIdentifier(c.Name)),
		"GRANT pg_read_all_data TO CURRENT_USER",
	} {
		_, err = query(t, other, q)
		if strings.HasPrefix(version, "15") && (err != nil && !errors.Is(err, sql.ErrNoRows)) {
			t.Errorf("PostgreSQL %s: another CREATEROLE admin could not %s (%v): docs/database.md says it can, update it", version, q, err)
		}
	}
}

package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/database"
)

func TestABadStrategyIsRefusedBeforeAnyChange(t *testing.T) {
	_, err := database.Open(database.Config{URL: "postgres://a:b@db:5432/postgres", Template: "tpl", Strategy: "FILE_COPY"})
	var ce *database.ConfigError
	if !errors.As(err, &ce) || !ce.BadInput() || !strings.Contains(err.Error(), "--database-strategy") || !strings.Contains(err.Error(), "auto, wal_log or file_copy") {
		t.Errorf("Open with strategy FILE_COPY: %v, want a ConfigError naming --database-strategy and its values", err)
	}
}

// TestTheStrategyChosenIsTheCopyMade tells the two copies apart by the
// write-ahead log each writes: WAL_LOG logs every block of the template
// (about its 7 MB), FILE_COPY one record.
func TestTheStrategyChosenIsTheCopyMade(t *testing.T) {
	s := getServer(t)
	const logged = 2 << 20
	for _, tc := range []struct {
		name, strategy string
		fileCopyFrom   int64 // 0: the default
		wantLogged     bool
	}{
		{"auto, a small template", database.StrategyAuto, 0, true},
		{"auto, a template past the threshold", "", 1, false},
		{"wal_log", database.StrategyWALLog, 1, true},
		{"file_copy", database.StrategyFileCopy, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := s.engine(t, func(c *database.Config) { c.Strategy = tc.strategy })
			if tc.fileCopyFrom > 0 {
				database.SetAutoFileCopyBytes(e, tc.fileCopyFrom)
			}
			before := walPosition(t, s)
			env := ensure(t, e, commit("strategy", "5a5a5a5a"))
			wal := walBytesSince(t, s, before)
			if got := wal >= logged; got != tc.wantLogged {
				t.Errorf("the copy wrote %d bytes of WAL; want WAL_LOG's (%d or more): %v", wal, logged, tc.wantLogged)
			}
			if got := mustQuery(t, env["DATABASE_URL"], "SELECT string_agg(note, ',') FROM visits"); got != "from the template" {
				t.Errorf("visits: %q, want the template's row", got)
			}
		})
	}
}

func TestAMissingTemplateIsNamed(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, func(c *database.Config) { c.Template = "no_such_template" })
	c := commit("notpl", "0badc0de")
	_, err := e.Ensure(context.Background(), c, nil)
	t.Cleanup(func() { _, _ = e.Drop(context.Background(), c) })
	if err == nil || !strings.Contains(err.Error(), `"no_such_template"`) || !strings.Contains(err.Error(), "--database-template") {
		t.Errorf("Ensure from a template the server lacks: %v, want an error naming it and --database-template", err)
	}
}

func walPosition(t *testing.T, s *server) string {
	t.Helper()
	return mustQuery(t, s.pg.AdminURL("postgres"), "SELECT pg_current_wal_insert_lsn()::text")
}

func walBytesSince(t *testing.T, s *server, lsn string) int64 {
	t.Helper()
	var n int64
	db, err := s.pg.Open("postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::bigint", lsn).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDropEndsAnAutovacuumWorker drops a database while an autovacuum
// worker runs in it, a process that has no role: WITH (FORCE) refuses to
// end it for an admin that is not a superuser.
func TestDropEndsAnAutovacuumWorker(t *testing.T) {
	s := getServer(t)
	ctx := context.Background()
	// A worker that starts within a second and crawls (1 unit of work
	// every 100 ms).
	settings := []string{"autovacuum_naptime = '1s'", "autovacuum_vacuum_cost_delay = 100", "autovacuum_vacuum_cost_limit = 1",
		"autovacuum_vacuum_threshold = 0", "autovacuum_vacuum_scale_factor = 0"}
	var set, reset []string
	for _, v := range settings {
		set = append(set, "ALTER SYSTEM SET "+v)
		reset = append(reset, "ALTER SYSTEM RESET "+strings.Fields(v)[0])
	}
	if err := s.pg.ExecAll(ctx, "postgres", append(set, "SELECT pg_reload_conf()")...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.pg.ExecAll(ctx, "postgres", append(reset, "SELECT pg_reload_conf()")...) })
	e := s.engine(t, nil)
	c := commit("autovac", "a0a0a0a0")
	env := ensure(t, e, c)
	mustQuery(t, env["DATABASE_URL"], "CREATE TABLE churn AS SELECT g FROM generate_series(1, 100000) g; DELETE FROM churn; SELECT 'ok'")
	worker := func() string {
		return mustQuery(t, s.pg.AdminURL("postgres"), "SELECT count(*)::text FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND datname = '"+c.Name+"'")
	}
	for i := 0; worker() == "0"; i++ {
		if i == 150 {
			t.Fatal("no autovacuum worker came to the commit's database in 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := e.Drop(ctx, c); err != nil {
		t.Fatalf("Drop with an autovacuum worker in the database: %v", err)
	}
	if got := mustQuery(t, s.pg.AdminURL("postgres"), "SELECT count(*)::text FROM pg_database WHERE datname = '"+c.Name+"'"); got != "0" {
		t.Errorf("the database is still there")
	}
}

// TestEnsureReopensADatabaseADropLeftClosed: a drop that failed after
// closing connections (dropDatabase) leaves the database closed; the next
// deploy opens it again.
func TestEnsureReopensADatabaseADropLeftClosed(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	c := commit("reopen", "c1c1c1c1")
	env := ensure(t, e, c)
	if err := s.pg.ExecAll(context.Background(), "postgres", `ALTER DATABASE "`+c.Name+`" ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	env, err := e.Ensure(context.Background(), c, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, env["DATABASE_URL"], "SELECT count(*)::text FROM visits"); got != "1" {
		t.Errorf("visits: %s rows, want the template's 1", got)
	}
}

// TestAutoCopiesATemplateWhoseSizeTheAdminCannotRead: a template the
// admin does not own, marked IS_TEMPLATE and closed to PUBLIC, is copied
// (WAL_LOG, the server's default) though pg_database_size is refused.
func TestAutoCopiesATemplateWhoseSizeTheAdminCannotRead(t *testing.T) {
	s := getServer(t)
	if err := s.pg.ExecAll(context.Background(), "postgres", "CREATE DATABASE tpl_not_mine IS_TEMPLATE true", "REVOKE ALL ON DATABASE tpl_not_mine FROM PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.pg.ExecAll(context.Background(), "postgres", "ALTER DATABASE tpl_not_mine IS_TEMPLATE false", "DROP DATABASE tpl_not_mine")
	})
	e := s.engine(t, func(c *database.Config) { c.Template = "tpl_not_mine" })
	env := ensure(t, e, commit("notmine", "e1e1e1e1"))
	if got := mustQuery(t, env["DATABASE_URL"], "SELECT current_database()::text"); got != "notmine-e1e1e1e1" {
		t.Errorf("connected to %q", got)
	}
}

// TestACopyIsClosedUntilItIsHandedOver: CREATE DATABASE gives PUBLIC
// CONNECT, and the hand-over revokes it in a later statement. The copy is
// made closed (ALLOW_CONNECTIONS false), so a job killed between the two
// leaves no database another preview's role could open; the next deploy
// opens it to its own role only.
func TestACopyIsClosedUntilItIsHandedOver(t *testing.T) {
	s := getServer(t)
	e := s.engine(t, nil)
	ctx := context.Background()
	c, other := commit("closed", "c0c0c0c0"), commit("closed", "0e0e0e0e")
	env := ensure(t, e, c)
	otherEnv := ensure(t, e, other)
	// The job is killed after the copy: drop the database only, copy again.
	if err := s.pg.ExecAll(ctx, "postgres", `DROP DATABASE "`+c.Name+`"`); err != nil {
		t.Fatal(err)
	}
	if err := database.Clone(ctx, e, c.Name); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, s.pg.AdminURL("postgres"), "SELECT datallowconn::text FROM pg_database WHERE datname = '"+c.Name+"'"); got != "false" {
		t.Errorf("a copy not yet handed over allows connections: %s", got)
	}
	intruder := s.pg.URL(otherEnv["PGUSER"], otherEnv["PGPASSWORD"], c.Name)
	if _, err := query(t, intruder, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "not currently accepting connections") {
		t.Errorf("another preview's role connecting to a copy not yet handed over: %v, want it refused as closed", err)
	}
	if _, err := e.Ensure(ctx, c, env); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, env["DATABASE_URL"], "SELECT count(*)::text FROM visits"); got != "1" {
		t.Errorf("visits: %s rows, want the template's 1", got)
	}
	if _, err := query(t, intruder, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("another preview's role connecting to the commit's database once handed over: %v, want permission denied", err)
	}
}

package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"

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

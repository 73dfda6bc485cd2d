package database

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"
)

// dropDatabase drops database name, ending its sessions. WITH (FORCE)
// refuses, for an admin that is not a superuser, to end a process without
// a role: an autovacuum worker, which PostgreSQL sends to a new database
// soon after its copy. Then connections are closed to the database, the
// sessions of roles the admin has the rights of (the commit's, its own)
// ended, and a plain DROP DATABASE ends the worker itself; it waits up to
// 5 s for the sessions to go, and fails naming the database when one, a
// superuser's, stays.
func dropDatabase(ctx context.Context, db *sql.DB, name string) error {
	q := pq.QuoteIdentifier(name)
	_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)")
	if !isCode(err, insufficientPrivilege) {
		return err
	}
	if _, err := db.ExecContext(ctx, "ALTER DATABASE "+q+" ALLOW_CONNECTIONS false"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL AND pg_has_role(usesysid, 'USAGE')`, name); err != nil {
		return fmt.Errorf("ending the sessions: %w", err)
	}
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q)
	return err
}

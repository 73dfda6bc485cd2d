package database

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// clone copies the template as database name, owned by the role name.
// While the template has sessions (someone connected to it) the copy is
// refused: it is tried again until Config.CloneWait, and then the error
// names the sessions. The copy is made closed (ALLOW_CONNECTIONS false):
// CREATE DATABASE grants CONNECT to PUBLIC, which handOver revokes before
// it opens the database, so a job killed in between leaves nothing any
// other role on the server can open.
func (p *Postgres) clone(ctx context.Context, db *sql.DB, name string) error {
	strategy, err := p.strategy(ctx, db)
	if err != nil {
		return err
	}
	q := "CREATE DATABASE " + pq.QuoteIdentifier(name) + " OWNER " + pq.QuoteIdentifier(name) + " TEMPLATE " + pq.QuoteIdentifier(p.template) + strategy + " ALLOW_CONNECTIONS false"
	deadline := time.Now().Add(p.cfg.CloneWait)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		_, err := db.ExecContext(ctx, q)
		switch {
		case err == nil, isCode(err, duplicateDatabase):
			return nil
		case isCode(err, uniqueViolation) && time.Now().Before(deadline):
			// A killed job's copy of the same name, still running on the
			// server, committed first: the next try finds it (42P04), or
			// makes it if that one rolled back.
		case !isCode(err, objectInUse):
			return fmt.Errorf("copying template %q as database %q: %w", p.template, name, err)
		case time.Now().Add(delay).After(deadline):
			return fmt.Errorf("copying template %q as database %q: waited %s for the template's sessions to end: %s; a template with a session open cannot be copied (REVOKE CONNECT ON DATABASE ... FROM PUBLIC keeps others out)",
				p.template, name, p.cfg.CloneWait, sessions(ctx, db, p.template))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("copying template %q as database %q: the template has sessions (%s): %w", p.template, name, sessions(context.WithoutCancel(ctx), db, p.template), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// strategy is the STRATEGY clause of the copy: Config.Strategy, or for
// StrategyAuto the one for the template's size (a size the admin may not
// read, of a template it does not own, counts as small: WAL_LOG, the
// server's default). Before PostgreSQL 15 there is no clause: FILE_COPY
// is the server's one way.
func (p *Postgres) strategy(ctx context.Context, db *sql.DB) (string, error) {
	var version, size int64
	err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int,
		CASE WHEN $1 AND has_database_privilege($2, 'CONNECT') THEN pg_database_size($2) ELSE 0 END`,
		p.cfg.Strategy == StrategyAuto, p.template).Scan(&version, &size)
	switch {
	case isCode(err, undefinedDatabase):
		return "", fmt.Errorf("copying template %q: there is no such database on the server (--database-template)", p.template)
	case err != nil:
		return "", fmt.Errorf("reading the size of template %q: %w", p.template, err)
	case version < 150000:
		return "", nil
	case p.cfg.Strategy == StrategyFileCopy, p.cfg.Strategy == StrategyAuto && size >= p.fileCopyFrom:
		return " STRATEGY FILE_COPY", nil
	}
	return " STRATEGY WAL_LOG", nil
}

// sessions names the sessions open on database name: process, role,
// application, client; never their queries.
func sessions(ctx context.Context, db *sql.DB, name string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT pid, COALESCE(usename, ''), COALESCE(application_name, ''), COALESCE(host(client_addr), 'local'), COALESCE(state, '')
		FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ORDER BY pid`, name)
	if err != nil {
		return "could not list them: " + err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid int
		var user, app, addr, st string
		if err := rows.Scan(&pid, &user, &app, &addr, &st); err != nil {
			return "could not list them: " + err.Error()
		}
		out = append(out, fmt.Sprintf("pid %d (role %s, application %q, from %s, %s)", pid, user, app, addr, st))
	}
	if len(out) == 0 {
		return "none left now"
	}
	return strings.Join(out, ", ")
}

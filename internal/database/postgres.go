package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	// lib/pq, not pgx: Helm's SQL storage driver already links it into
	// shipper (go.mod has it), so per-commit databases add no module and
	// no code to the binary; database/sql, SCRAM, context cancellation
	// and its *pq.Error codes are all this package needs.
	"github.com/lib/pq"
)

// Postgres is the Engine of a PostgreSQL server (13 or later: DROP
// DATABASE ... WITH (FORCE)).
type Postgres struct {
	cfg      Config
	admin    pq.Config // the admin connection, its database the URL's
	podHost  string    // host the pods use
	podPort  string
	sslMode  string // the URL's sslmode, passed on to the pods ("" none)
	template string
	// fileCopyFrom is the template size from which StrategyAuto copies
	// files: AutoFileCopyBytes, lowered by tests.
	fileCopyFrom int64
}

// open connects as the admin to database db ("" the URL's).
func (p *Postgres) open(db string) (*sql.DB, error) {
	cfg := p.admin.Clone()
	if db != "" {
		cfg.Database = db
	}
	if cfg.ApplicationName == "" {
		cfg.ApplicationName = "shipper"
	}
	if cfg.ConnectTimeout == 0 {
		// A server that does not answer fails the job in seconds, not at
		// its --timeout.
		cfg.ConnectTimeout = 15 * time.Second
	}
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, errors.New("connecting to the database server: bad connection settings")
	}
	d := sql.OpenDB(c)
	d.SetMaxOpenConns(1)
	return d, nil
}

// state is what the server has of one commit's name.
type state struct {
	role, db  bool
	roleMark  string // the role's comment
	dbOwner   string // the database's owner
	ownerMark string // its owner's comment
}

// inspect reads what exists under name.
func inspect(ctx context.Context, db *sql.DB, name string) (state, error) {
	var s state
	err := db.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		COALESCE((SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1), ''),
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
		COALESCE((SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1), ''),
		COALESCE((SELECT shobj_description(r.oid, 'pg_authid') FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1), '')`,
		name).Scan(&s.role, &s.roleMark, &s.db, &s.dbOwner, &s.ownerMark)
	if err != nil {
		return s, fmt.Errorf("reading database %q: %w", name, err)
	}
	return s, nil
}

// ours refuses what s holds unless shipper made it for c: a role marked
// for c's app and project, and a database owned by that role.
func (s state) ours(c Commit) error {
	if s.role {
		m, ok := parseMark(s.roleMark)
		if !ok || m.App != c.App || m.Project != c.Project {
			return &NotOursError{Name: c.Name, Owner: "its role: " + whose(s.roleMark)}
		}
	}
	if s.db && (s.dbOwner != c.Name || !s.role) {
		return &NotOursError{Name: c.Name, Owner: fmt.Sprintf("owned by role %q: %s", s.dbOwner, whose(s.ownerMark))}
	}
	return nil
}

// SQLSTATEs shipper tells apart.
const (
	duplicateObject   = "42710" // CREATE ROLE of an existing role
	duplicateDatabase = "42P04"
	objectInUse       = "55006" // the template has sessions
	// uniqueViolation: another CREATE DATABASE of the same name (a killed
	// job's, still running on the server) committed while this one ran.
	uniqueViolation   = "23505"
	undefinedDatabase = "3D000"
	// DROP DATABASE ... WITH (FORCE) of a database an autovacuum worker
	// is in, by an admin that is not a superuser
	insufficientPrivilege = "42501"
)

func isCode(err error, code string) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && string(pe.Code) == code
}

// Ensure makes or completes commit c's role and database.
func (p *Postgres) Ensure(ctx context.Context, c Commit, previous map[string]string) (map[string]string, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.Name == p.template || c.Name == p.admin.Database {
		return nil, &NotOursError{Name: c.Name, Owner: "it is the template or the admin's database"}
	}
	db, err := p.open("")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	s, err := inspect(ctx, db, c.Name)
	if err != nil {
		return nil, err
	}
	if err := s.ours(c); err != nil {
		return nil, err
	}
	password := previous["PGPASSWORD"]
	if !usablePassword(password) {
		password = newPassword()
	}
	if err := p.ensureRole(ctx, db, c, s.role, password); err != nil {
		return nil, err
	}
	if !s.db {
		if err := p.clone(ctx, db, c.Name); err != nil {
			return nil, err
		}
	}
	if err := p.handOver(ctx, db, c); err != nil {
		return nil, err
	}
	return p.env(c.Name, password), nil
}

// ensureRole creates c's role with its mark, or sets the password of the
// existing one, and makes the admin a member (to hand the clone's objects
// over, and to drop them later). Each is one round trip: statements sent
// together run as one transaction, so the role never exists without its
// mark.
func (p *Postgres) ensureRole(ctx context.Context, db *sql.DB, c Commit, exists bool, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	role := pq.QuoteIdentifier(c.Name)
	grant := "GRANT " + role + " TO CURRENT_USER"
	if !exists {
		_, err := db.ExecContext(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD "+pq.QuoteLiteral(verifier)+"; "+
			"COMMENT ON ROLE "+role+" IS "+pq.QuoteLiteral(mark{App: c.App, SHA: c.SHA, Project: c.Project}.String())+"; "+grant)
		if !isCode(err, duplicateObject) {
			if err != nil {
				return fmt.Errorf("creating role %q: %w", c.Name, err)
			}
			return nil
		}
		// Made meanwhile (the caller's lock was lost): judged again.
		s, err := inspect(ctx, db, c.Name)
		if err != nil {
			return err
		}
		if err := s.ours(c); err != nil {
			return err
		}
	}
	if _, err := db.ExecContext(ctx, "ALTER ROLE "+role+" PASSWORD "+pq.QuoteLiteral(verifier)+"; "+grant); err != nil {
		return fmt.Errorf("setting the password of role %q: %w", c.Name, err)
	}
	return nil
}

// Drop removes commit c's database (WITH (FORCE): its sessions end) and
// role, when shipper made them for c.
func (p *Postgres) Drop(ctx context.Context, c Commit) (bool, error) {
	if err := c.check(); err != nil {
		return false, err
	}
	db, err := p.open("")
	if err != nil {
		return false, err
	}
	defer db.Close()
	s, err := inspect(ctx, db, c.Name)
	if err != nil || !s.role && !s.db {
		return false, err
	}
	if err := s.ours(c); err != nil {
		return false, err
	}
	name := pq.QuoteIdentifier(c.Name)
	if s.db {
		if err := dropDatabase(ctx, db, c.Name); err != nil {
			return false, fmt.Errorf("dropping database %q: %w", c.Name, err)
		}
	}
	if _, err := db.ExecContext(ctx, "DROP ROLE IF EXISTS "+name); err != nil {
		return false, fmt.Errorf("dropping role %q: %w", c.Name, err)
	}
	return true, nil
}

// List returns the roles shipper marked for app and project, with whether
// each still has its database.
func (p *Postgres) List(ctx context.Context, app, project string) ([]Found, error) {
	db, err := p.open("")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT r.rolname, shobj_description(r.oid, 'pg_authid'),
		EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.rolname AND d.datdba = r.oid)
		FROM pg_roles r WHERE shobj_description(r.oid, 'pg_authid') LIKE $1 ORDER BY r.rolname`, markPrefix+"%")
	if err != nil {
		return nil, fmt.Errorf("listing databases: %w", err)
	}
	defer rows.Close()
	var out []Found
	for rows.Next() {
		var f Found
		var comment string
		if err := rows.Scan(&f.Name, &comment, &f.Database); err != nil {
			return nil, fmt.Errorf("listing databases: %w", err)
		}
		if m, ok := parseMark(comment); ok && m.App == app && m.Project == project {
			f.SHA = m.SHA
			out = append(out, f)
		}
	}
	return out, rows.Err()
}

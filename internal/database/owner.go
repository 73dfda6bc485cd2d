package database

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"
)

// handOver makes commit c's database the role's alone: CONNECT is revoked
// from PUBLIC (another preview's role cannot open it), and what the clone
// holds that the role does not own (the template's schemas, tables, views,
// sequences, functions and types, made by the admin or another role the
// admin is a member of) is given to the role, so the app and its
// migrations can use and change it. Objects of extensions stay their
// extension's; sequences owned by a column follow their table. It runs on
// every Ensure: a job killed half way through is finished by the next, and
// the loops skip what the role already owns.
func (p *Postgres) handOver(ctx context.Context, admin *sql.DB, c Commit) error {
	name := pq.QuoteIdentifier(c.Name)
	// Connections are allowed again after a drop that failed half way
	// (dropDatabase).
	if _, err := admin.ExecContext(ctx, "REVOKE ALL ON DATABASE "+name+" FROM PUBLIC; ALTER DATABASE "+name+" ALLOW_CONNECTIONS true; "+
		"COMMENT ON DATABASE "+name+" IS "+pq.QuoteLiteral(mark{App: c.App, SHA: c.SHA, Project: c.Project}.String())); err != nil {
		return fmt.Errorf("handing database %q to its role: %w", c.Name, err)
	}
	// ALTER ... OWNER changes only the catalogs of the database it runs
	// in: a second connection, to the clone, is the one way.
	db, err := p.open(c.Name)
	if err != nil {
		return err
	}
	defer db.Close()
	// One round trip, one transaction. The role's name reaches the DO
	// block as a setting of the transaction: a literal inside the block's
	// dollar quotes could end them ("a$shipper$b").
	//
	// The search path is pg_catalog alone for that transaction. The role
	// owns this database and its schema public, and may set the
	// database's own search_path (ALTER DATABASE ... SET): a function or
	// operator it made there that matches the block's argument types more
	// closely than pg_catalog's (an =(oid, regclass)) would otherwise run
	// as the admin. Set in the transaction, not as a startup parameter of
	// the connection, so a pooler in front of the server (PgBouncer
	// refuses unknown startup parameters) changes nothing.
	if _, err := db.ExecContext(ctx, "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true), pg_catalog.set_config('shipper.owner', "+pq.QuoteLiteral(c.Name)+", true); "+handOverSQL); err != nil {
		return fmt.Errorf("handing the objects of database %q to its role: %w", c.Name, err)
	}
	return nil
}

// handOverSQL gives every object of the current database's own schemas
// (not pg_*, not information_schema) that the role named by the setting
// shipper.owner does not own to it.
// Schemas first: the role then has CREATE where it takes its tables.
const handOverSQL = `DO $shipper$
DECLARE
	owner name := current_setting('shipper.owner');
	target oid := (SELECT oid FROM pg_roles WHERE rolname = current_setting('shipper.owner'));
	r record;
BEGIN
	FOR r IN SELECT n.nspname FROM pg_namespace n
		WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		AND n.nspowner NOT IN (target, 'pg_database_owner'::regrole)
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
	LOOP
		EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, owner);
	END LOOP;
	FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND c.relowner <> target
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
			AND (d.deptype = 'e' OR c.relkind = 'S' AND d.deptype IN ('a', 'i')))
	LOOP
		EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
			WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, r.obj, owner);
	END LOOP;
	FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND p.proowner <> target
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
	LOOP
		EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.obj, owner);
	END LOOP;
	FOR r IN SELECT t.oid::regtype AS obj, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND t.typtype IN ('d', 'e', 'r') AND t.typowner <> target
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
	LOOP
		EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.obj, owner);
	END LOOP;
END
$shipper$`

// Package database gives each commit's preview a database of its own on a
// database server, a copy of a template, and removes it with the preview.
// It knows nothing of Kubernetes or Helm: internal/release calls it through
// the Engine interface, and gets back the environment the commit's pods
// read (written into the commit's Secret, never into Helm values).
//
// Design:
//
//	Config        the admin connection (a URL, never echoed: errors name
//	              the setting, not its value), the template database, the
//	              host the pods use when it is not the job's
//	Open(Config)  checks Config and picks the engine by the URL's scheme
//	              (postgres:// and postgresql://: Postgres); it connects to
//	              nothing. Another engine (mysql://) is one more case there
//	              and one more type: internal/release does not change.
//	Engine        Vars     the variables Ensure sets (DATABASE_URL, PG*)
//	              Ensure   commit -> role + database, a copy of the
//	                       template, or the existing ones (their data
//	                       kept) -> the pods' environment
//	              Drop     commit -> database and role gone, sessions ended;
//	                       only what shipper made for that app and project
//	              List     what shipper made for an app: databases and roles,
//	                       for status (leftovers) and prune (removal)
//
// A commit's database and role are both named after its release,
// "<app>-<short sha>", so one is found from the other. What shipper made is
// marked: the role carries a comment "shipper: {app, sha, project}" written
// in the transaction that creates it, and a database is shipper's only when
// its owner is the marked role of the same name. A database made by anyone
// else, production's, or another project's is refused by Ensure and by Drop
// (a *NotOursError), and List never returns it. Because the role and its
// mark appear atomically and the database is created owned by the role, a
// job killed at any point leaves either nothing, a marked role alone, or a
// marked role and its database: Ensure completes both, Drop removes both.
//
// Postgres (postgres.go) makes each commit's role with LOGIN only (no
// CREATEDB, CREATEROLE, SUPERUSER, REPLICATION or BYPASSRLS), its password
// sent as a SCRAM verifier (scram.go) so the server's statement log never
// holds it, and grants it to the admin role (so the admin can hand over the
// clone's objects and later drop them). The clone is CREATE DATABASE ...
// OWNER role TEMPLATE template STRATEGY WAL_LOG or FILE_COPY
// (Config.Strategy; by default by the template's size, clone.go); CONNECT
// is revoked from PUBLIC, so one
// preview's role cannot open another's database; the objects copied from
// the template (schemas, tables, views, sequences, functions, types) are
// handed to the role (owner.go), so the app and its migrations can change
// them. A template with open sessions cannot be copied: Ensure waits up to
// Config.CloneWait, then names the sessions (clone.go). Drop ends the
// database's sessions, an autovacuum worker's too (drop.go). The
// settings' checks and the pods' variables are pgconfig.go's.
package database

package database

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Engine makes, finds and removes the per-commit databases of one server.
// Its methods are safe to call from several goroutines and processes at
// once: what they change is checked again on the server.
type Engine interface {
	// Vars are the names of the environment variables Ensure returns.
	Vars() []string
	// Ensure makes commit c's role and database, a copy of the template,
	// or finds them (their data kept), and returns the environment the
	// commit's pods use to reach it. previous is what an earlier Ensure
	// returned (the commit's Secret), so the role keeps its password; an
	// empty or unusable one gets a new password.
	Ensure(ctx context.Context, c Commit, previous map[string]string) (map[string]string, error)
	// Drop removes commit c's database, ending its sessions, and its role.
	// Nothing to drop is no error (dropped is false). Anything shipper did
	// not make for c's app and project is refused with a *NotOursError.
	Drop(ctx context.Context, c Commit) (dropped bool, err error)
	// List returns what shipper made for app and project: a database with
	// its role, or a role left alone by a killed job.
	List(ctx context.Context, app, project string) ([]Found, error)
}

// Commit names one commit's database.
type Commit struct {
	// Name is the commit's release, "<app>-<short sha>": the name of its
	// database and its role.
	Name string
	// App, SHA (short) and Project (the GitLab project ID, "" for local
	// use) are written on what Ensure makes, and must match for Drop.
	App, SHA, Project string
}

// Found is what shipper made for one commit.
type Found struct {
	Name string `json:"name"`
	SHA  string `json:"sha"`
	// Database is false for a role whose database is gone or was never
	// made (a job killed between the two).
	Database bool `json:"database"`
}

// Config is how to reach the server and what to copy.
type Config struct {
	// URL is the admin connection, postgres://user:password@host:port/db
	// (SHIPPER_DATABASE_URL). It is never part of an error or output.
	URL string
	// Template is the database each commit's database is a copy of.
	Template string
	// Host, "host" or "host:port", is where the pods reach the server when
	// it is not where the job does (SHIPPER_DATABASE_HOST).
	Host string
	// CloneWait bounds how long Ensure waits for a template with open
	// sessions (default 20s); the context's deadline still applies.
	CloneWait time.Duration
	// Strategy is how the template is copied (SHIPPER_DATABASE_STRATEGY):
	// StrategyAuto (""), StrategyWALLog or StrategyFileCopy.
	Strategy string
}

// The ways to copy a template, PostgreSQL 15's CREATE DATABASE ...
// STRATEGY. WAL_LOG copies block by block through the write-ahead log;
// FILE_COPY copies the files, with a checkpoint before and after.
const (
	// StrategyAuto is FILE_COPY from a template of AutoFileCopyBytes or
	// more, WAL_LOG below: the copy the benchmarks found faster at each
	// size (docs/benchmarks.md).
	StrategyAuto     = "auto"
	StrategyWALLog   = "wal_log"
	StrategyFileCopy = "file_copy"
)

// AutoFileCopyBytes is the template size from which StrategyAuto copies
// files.
const AutoFileCopyBytes = 64 << 20

// CheckStrategy refuses a Config.Strategy that is none of the three.
func CheckStrategy(s string) error {
	switch s {
	case "", StrategyAuto, StrategyWALLog, StrategyFileCopy:
		return nil
	}
	return &ConfigError{Input: "--database-strategy", Rule: "must be auto, wal_log or file_copy"}
}

// DefaultCloneWait is Config.CloneWait's default.
const DefaultCloneWait = 20 * time.Second

// Open checks cfg and returns the engine its URL's scheme names. It
// connects to nothing: a bad setting is a *ConfigError before any change.
func Open(cfg Config) (Engine, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		// url.Parse's error quotes the URL, which holds the password.
		return nil, &ConfigError{Input: "--database-url", Rule: "must be a URL like postgres://USER:PASSWORD@HOST:PORT/DB"}
	}
	if cfg.CloneWait <= 0 {
		cfg.CloneWait = DefaultCloneWait
	}
	if err := CheckStrategy(cfg.Strategy); err != nil {
		return nil, err
	}
	cfg.Strategy = cmp.Or(cfg.Strategy, StrategyAuto)
	switch u.Scheme {
	case "postgres", "postgresql":
		return newPostgres(cfg, u)
	}
	return nil, &ConfigError{Input: "--database-url", Rule: "scheme must be postgres:// or postgresql:// (the one engine so far)"}
}

// ConfigError is a setting shipper cannot use: nothing was changed. Its
// BadInput method is the mark the CLI maps to exit code 2. It names the
// setting and never its value.
type ConfigError struct{ Input, Rule string }

func (e *ConfigError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Input, e.Rule) }

// BadInput marks e as the caller's mistake.
func (e *ConfigError) BadInput() bool { return true }

// NotOursError is a database or role with a commit's name that shipper
// did not make for that commit's app and project: never changed, never
// dropped.
type NotOursError struct {
	Name string
	// Owner says whose it is, as far as its mark tells.
	Owner string
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("database %q exists and is not shipper's for this app: %s; shipper neither changes nor drops it", e.Name, e.Owner)
}

// BadInput: the name is taken, nothing was changed.
func (e *NotOursError) BadInput() bool { return true }

// markPrefix starts the comment shipper writes on each role it makes.
const markPrefix = "shipper: "

// mark is what that comment holds after the prefix.
type mark struct {
	App     string `json:"app"`
	SHA     string `json:"sha"`
	Project string `json:"project,omitempty"`
}

func (m mark) String() string {
	b, _ := json.Marshal(m)
	return markPrefix + string(b)
}

// parseMark reads a role's comment; ok is false for any comment shipper
// did not write.
func parseMark(comment string) (m mark, ok bool) {
	rest, found := strings.CutPrefix(comment, markPrefix)
	if !found || json.Unmarshal([]byte(rest), &m) != nil || m.App == "" {
		return mark{}, false
	}
	return m, true
}

// whose describes the owner a mark names, for NotOursError.
func whose(comment string) string {
	m, ok := parseMark(comment)
	switch {
	case !ok:
		return "shipper did not make it"
	case m.Project == "":
		return fmt.Sprintf("shipper made it for app %s with no project", m.App)
	}
	return fmt.Sprintf("shipper made it for app %s of project %s", m.App, m.Project)
}

// maxName is PostgreSQL's identifier limit (NAMEDATALEN-1): a longer name
// would be cut silently, and two commits could share one database.
const maxName = 63

func (c Commit) check() error {
	if c.Name == "" || len(c.Name) > maxName || c.App == "" {
		return &ConfigError{Input: "database name", Rule: fmt.Sprintf("must be 1 to %d bytes, with an app", maxName)}
	}
	return nil
}

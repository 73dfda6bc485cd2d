package database

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// newPostgres checks cfg (u is cfg.URL parsed).
func newPostgres(cfg Config, u *url.URL) (*Postgres, error) {
	admin, err := pq.NewConfig(cfg.URL)
	if err != nil {
		return nil, &ConfigError{Input: "--database-url", Rule: "is no PostgreSQL connection URL (postgres://USER:PASSWORD@HOST:PORT/DB)"}
	}
	if u.User.Username() == "" {
		return nil, &ConfigError{Input: "--database-url", Rule: "names no user: give the admin role, postgres://USER:PASSWORD@HOST:PORT/DB"}
	}
	if err := CheckTemplate(cfg.Template); err != nil {
		return nil, err
	}
	if admin.Database == cfg.Template {
		return nil, &ConfigError{Input: "--database-template", Rule: "is the database of --database-url: a template with a session open cannot be copied; connect to another (postgres)"}
	}
	p := &Postgres{cfg: cfg, admin: admin, template: cfg.Template, sslMode: u.Query().Get("sslmode"), fileCopyFrom: AutoFileCopyBytes}
	p.podHost, p.podPort = u.Hostname(), cmp.Or(u.Port(), "5432")
	if cfg.Host != "" {
		h, port, err := splitHost(cfg.Host)
		if err != nil {
			return nil, err
		}
		p.podHost, p.podPort = h, cmp.Or(port, p.podPort)
	}
	return p, nil
}

// CheckTemplate refuses a template name no server has.
func CheckTemplate(name string) error {
	if name == "" || len(name) > maxName {
		return &ConfigError{Input: "--database-template", Rule: fmt.Sprintf("must name the template database (1 to %d bytes) each commit's database is a copy of", maxName)}
	}
	return nil
}

// CheckHost refuses a Config.Host that is not HOST or HOST:PORT.
func CheckHost(h string) error {
	_, _, err := splitHost(h)
	return err
}

func splitHost(hp string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), ""
	}
	bad := &ConfigError{Input: "--database-host", Rule: "must be HOST or HOST:PORT, the port 1 to 65535"}
	if host == "" || strings.ContainsAny(host, "/@?#[] \t\n") {
		return "", "", bad
	}
	if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
		return "", "", bad
	}
	return host, port, nil
}

// Vars are DATABASE_URL and libpq's PG* variables.
func (p *Postgres) Vars() []string {
	v := []string{"DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"}
	if p.sslMode != "" {
		v = append(v, "PGSSLMODE")
	}
	return v
}

// env is the pods' environment for database name.
func (p *Postgres) env(name, password string) map[string]string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(name, password), Host: net.JoinHostPort(p.podHost, p.podPort), Path: "/" + name}
	if p.sslMode != "" {
		u.RawQuery = url.Values{"sslmode": {p.sslMode}}.Encode()
	}
	e := map[string]string{
		"DATABASE_URL": u.String(), "PGHOST": p.podHost, "PGPORT": p.podPort,
		"PGDATABASE": name, "PGUSER": name, "PGPASSWORD": password,
	}
	if p.sslMode != "" {
		e["PGSSLMODE"] = p.sslMode
	}
	return e
}

package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// Postgres is a running PostgreSQL server (Debian's postgresql 15) on
// 127.0.0.1, throwaway: its data lives in a directory of its own, removed
// by Stop or, when the test binary dies, by its reaper. Roles log in over
// TCP with a password (scram-sha-256, as pg_hba.conf's host lines say);
// only the Unix socket in the data directory trusts.
type Postgres struct {
	// Host is "127.0.0.1:<port>".
	Host string
	// Admin and Password are a superuser's: tests make the least-privilege
	// admin shipper runs as with them.
	Admin, Password string
	// Dir holds the data directory and the server's log.
	Dir string

	proc   *process
	reaper *os.File
}

// PostgresBin is where Debian's postgresql-15 puts its binaries.
const PostgresBin = "/usr/lib/postgresql/15/bin"

// URL is a connection URL for user with password to database db.
func (p *Postgres) URL(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: p.Host, Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// AdminURL is URL for the superuser.
func (p *Postgres) AdminURL(db string) string { return p.URL(p.Admin, p.Password, db) }

// Open connects as the superuser to database db.
func (p *Postgres) Open(db string) (*sql.DB, error) { return sql.Open("postgres", p.AdminURL(db)) }

// StartPostgres runs initdb and postgres on a free port, as the postgres
// user when this process is root (initdb refuses root), and returns once
// the superuser can log in.
func StartPostgres(ctx context.Context) (*Postgres, error) { return StartPostgresFor(ctx, false) }

// NodeGateway is the host's address on the real node's bridge (cni0),
// which the node's pods reach the host at.
const NodeGateway = "10.244.0.1"

// StartPostgresFor is StartPostgres, listening also on NodeGateway with
// password logins from the node's pods (clusterCIDR) when pods is set:
// for the e2e's apps. Start the Env's node first: it makes the bridge.
func StartPostgresFor(ctx context.Context, pods bool) (*Postgres, error) {
	return startPostgres(ctx, pods, false)
}

// StartDurablePostgres is StartPostgres with PostgreSQL's own durability
// settings (fsync, synchronous_commit and full_page_writes on, initdb's
// files synced): a server as production runs it, for the benchmarks whose
// figures depend on it (a clone's checkpoints and WAL). Stop it when done.
func StartDurablePostgres(ctx context.Context) (*Postgres, error) {
	return startPostgres(ctx, false, true)
}

func startPostgres(ctx context.Context, pods, durable bool) (_ *Postgres, err error) {
	if _, err := os.Stat(filepath.Join(PostgresBin, "postgres")); err != nil {
		return nil, fmt.Errorf("no PostgreSQL 15 (hack/deps.sh test installs Debian's postgresql): %w", err)
	}
	dir, reaper, err := newDir(dirPrefix + "pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, Admin: "testenv", Password: randomToken(), reaper: reaper}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	cred, err := postgresCredential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(data, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeOwned(pwfile, p.Password+"\n", cred); err != nil {
		return nil, err
	}
	initArgs := []string{"-D", data, "-U", p.Admin, "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"}
	// Durability off: the data is thrown away.
	settings := []string{"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"}
	if durable {
		settings = nil
	} else {
		initArgs = append(initArgs, "--no-sync")
	}
	initdb := exec.CommandContext(ctx, filepath.Join(PostgresBin, "initdb"), initArgs...)
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	listen := "127.0.0.1"
	if pods {
		listen += "," + NodeGateway
		hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		_, err = fmt.Fprintf(hba, "host all all %s scram-sha-256\n", clusterCIDR)
		if cerr := hba.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	var lastErr error
	for range startAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		args := append([]string{"-D", data, "-c", "listen_addresses=" + listen, "-p", strconv.Itoa(ports[0]), "-k", data,
			"-c", "max_connections=200"}, settings...)
		proc, err := startProcessAs(dir, "postgres", cred, filepath.Join(PostgresBin, "postgres"), args...)
		if err != nil {
			return nil, err
		}
		p.Host = fmt.Sprintf("127.0.0.1:%d", ports[0])
		if lastErr = p.waitReady(ctx, proc); lastErr == nil {
			p.proc = proc
			return p, nil
		}
		proc.stop(0)
	}
	return nil, lastErr
}

// waitReady waits until the superuser can run a query, or proc exits.
func (p *Postgres) waitReady(ctx context.Context, proc *process) error {
	db, err := p.Open("postgres")
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := db.PingContext(ctx)
		switch {
		case err == nil:
			return nil
		case proc.exited():
			return proc.exitError()
		case time.Now().After(deadline) || ctx.Err() != nil:
			return fmt.Errorf("postgres did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server and removes its directory. It is safe to call
// more than once.
func (p *Postgres) Stop() {
	if p.proc != nil {
		p.proc.stop(2 * time.Second)
		p.proc = nil
	}
	if p.Dir != "" {
		_ = os.RemoveAll(p.Dir)
	}
	if p.reaper != nil {
		p.reaper.Close()
		p.reaper = nil
	}
}

// postgresCredential is the user PostgreSQL runs as: postgres when this
// process is root, which initdb refuses, else this process's own (nil).
// dir is opened to it (searchable, not readable).
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running PostgreSQL as root is refused, and there is no postgres user (Debian's postgresql package makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// writeOwned writes a private file that cred's user (nil: this process)
// owns.
func writeOwned(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// The PostgreSQL server shared by the tests of one test binary.
var sharedPG struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// GetPostgres returns the PostgreSQL server shared by the package's tests,
// starting it on first use; Main stops it. It skips the test under -short.
func GetPostgres(t testing.TB) *Postgres {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL (run without -short)")
	}
	sharedPG.once.Do(func() { sharedPG.pg, sharedPG.err = StartPostgres(context.Background()) })
	if sharedPG.err != nil {
		t.Fatalf("starting PostgreSQL: %v", sharedPG.err)
	}
	return sharedPG.pg
}

// stopSharedPostgres is Main's.
func stopSharedPostgres() {
	if sharedPG.pg != nil {
		sharedPG.pg.Stop()
	}
}

// ShipperAdmin makes what docs/database.md asks of an operator: a
// least-privilege admin role (LOGIN CREATEDB CREATEROLE, no superuser)
// with password, and a template database it owns, holding content (SQL
// run as that role), which PUBLIC cannot connect to. It returns the
// admin's URL to database postgres.
func (p *Postgres) ShipperAdmin(ctx context.Context, role, password, template, content string) (string, error) {
	steps := []struct{ url, sql string }{
		{p.AdminURL("postgres"), fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB CREATEROLE PASSWORD %s", pq.QuoteIdentifier(role), pq.QuoteLiteral(password))},
		{p.AdminURL("postgres"), fmt.Sprintf("CREATE DATABASE %s OWNER %s", pq.QuoteIdentifier(template), pq.QuoteIdentifier(role))},
		{p.AdminURL("postgres"), fmt.Sprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", pq.QuoteIdentifier(template))},
		{p.URL(role, password, template), content},
	}
	for _, s := range steps {
		if err := execSQL(ctx, s.url, s.sql); err != nil {
			return "", err
		}
	}
	return p.URL(role, password, "postgres"), nil
}

// execSQL runs statements q at url, in one connection.
func execSQL(ctx context.Context, url, q string) error {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("setting up PostgreSQL: %w", err)
	}
	return nil
}

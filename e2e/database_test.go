//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// database runs the Node.js sample app's /visits (a count kept in its
// DATABASE_URL) with a database per commit on a real PostgreSQL server
// the node's pods reach at the bridge's address: two previews count
// independently, the migration (--migrate '["node", "migrate.js"]': the
// runtime base has no shell) runs before the pods roll out, a failing one
// fails the deploy with its log line and keeps the previous pods serving,
// production counts in production's own database (migrated by promote),
// and a deleted preview's database is gone.
func database(t *testing.T, c *cluster) {
	ctx := context.Background()
	pg, err := testenv.StartPostgresFor(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	_, port, _ := net.SplitHostPort(pg.Host)
	const adminPassword, prodPassword = "e2e-admin-pw-77aa", "e2e-prod-pw-88bb"
	// The template is empty: the migration makes the table.
	admin, err := pg.ShipperAdmin(ctx, "shipper_admin", adminPassword, "visits_tpl", "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	super, err := pg.Open("postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	// Production's database is production's owner's, made once.
	for _, q := range []string{"CREATE ROLE visits_prod LOGIN PASSWORD '" + prodPassword + "'", "CREATE DATABASE visits_prod OWNER visits_prod"} {
		if _, err := super.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	base, err := c.env.Registry.PushRuntimeBase(ctx, "node")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "examples", "node"))
	if err != nil {
		t.Fatal(err)
	}
	a := *c
	a.app = "visits"
	a.extra = append(append([]string{}, c.extra...), "SHIPPER_CONTEXT="+dir, "SHIPPER_ENTRYPOINT=", "SHIPPER_BASE="+base, "SHIPPER_COMPRESSION=zstd",
		"SHIPPER_DATABASE_URL="+admin, "SHIPPER_DATABASE_TEMPLATE=visits_tpl", "SHIPPER_DATABASE_HOST="+testenv.NodeGateway+":"+port,
		`SHIPPER_MIGRATE=["node", "migrate.js"]`)
	shaA, shaB := "d1a2b3c4e5f60718293a4b5c6d7e8f9001122334", "d2b3c4d5e6f708192a3b4c5d6e7f809112233445"
	hosts := map[string]string{}
	for _, sha := range []string{shaA, shaB} {
		a.run(t, sha, "package")
		hosts[sha] = strings.TrimPrefix(a.run(t, sha, "deploy"), "http://")
		a.eventually(t, hosts[sha], "/version", 200, sha[:8])
	}
	visit := func(host, want string) {
		t.Helper()
		code, body := a.get(host, "/visits")
		say(t, "\n$ curl -H 'Host: %s' http://%s/visits\n%d %s", host, a.addr(), code, body)
		if code != 200 || body != want {
			t.Errorf("http://%s/visits answered %d %q, want %s", host, code, body, want)
		}
	}
	visit(hosts[shaA], "1")
	visit(hosts[shaA], "2")
	visit(hosts[shaB], "1") // B's own database

	// A failing migration: the deploy fails with its log line, A's pods
	// of before keep serving on their data.
	cs, err := a.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	nsA := "visits-" + shaA[:8]
	secret, err := cs.CoreV1().Secrets(nsA).Get(ctx, nsA+"-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	broken := a
	broken.extra = append(append([]string{}, a.extra...), `SHIPPER_MIGRATE=["node", "migrate.js", "broken"]`)
	out, errOut, code := broken.try(shaA, "deploy")
	say(t, "\n$ SHIPPER_MIGRATE='[\"node\", \"migrate.js\", \"broken\"]' shipper deploy   # a migration that fails\n%s%s(exit %d)", errOut, out, code)
	if code == 0 || !strings.Contains(errOut, `relation "no_such_table" does not exist`) || !strings.Contains(errOut, "exit code 1") {
		t.Errorf("deploy with a failing migration: exit %d, want a failure naming the migration's error", code)
	}
	for _, s := range []string{adminPassword, string(secret.Data["PGPASSWORD"]), "postgres://"} {
		if s == "" || strings.Contains(out+errOut, s) {
			t.Errorf("the failed deploy's output holds a password or a database URL (%.12q...)", s)
		}
	}
	visit(hosts[shaA], "3")
	// The migration fixed, the next deploy repairs the release; the data
	// stays.
	a.run(t, shaA, "deploy")
	a.eventually(t, hosts[shaA], "/version", 200, shaA[:8])
	visit(hosts[shaA], "4")

	// Production: refused without its own database, then migrated and
	// counting in it.
	if _, errOut, code := a.try(shaA, "promote"); code != 2 || !strings.Contains(errOut, "K8S_SECRET_DATABASE_URL") {
		t.Errorf("promote without production's DATABASE_URL: exit %d, want 2 naming K8S_SECRET_DATABASE_URL:\n%s", code, errOut)
	}
	prod := a
	prod.extra = append(append([]string{}, a.extra...), fmt.Sprintf("K8S_SECRET_DATABASE_URL=postgres://visits_prod:%s@%s:%s/visits_prod", prodPassword, testenv.NodeGateway, port))
	prodHost := a.app + "." + a.router.domain
	prod.run(t, shaA, "promote")
	a.eventually(t, prodHost, "/version", 200, shaA[:8])
	// Production's pods (the commit's, sized up with production's
	// Secret) count in production's database: what the host answers is
	// its count. A pod of before the size-up may answer for a moment.
	for i := 0; ; i++ {
		code, body := a.get(prodHost, "/visits")
		n := count(t, pg, "visits_prod", "SELECT count(*) FROM visits")
		if code == 200 && body == fmt.Sprint(n) && n >= 1 {
			say(t, "\n$ curl -H 'Host: %s' http://%s/visits\n%d %s   # production's database holds %d visits", prodHost, a.addr(), code, body, n)
			break
		}
		if i == 20 {
			t.Fatalf("http://%s/visits answered %d %q; production's database holds %d visits", prodHost, code, body, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
	visit(hosts[shaB], "2")

	// A deleted preview's database is gone.
	a.run(t, shaB, "delete")
	if n := count(t, pg, "postgres", "SELECT count(*) FROM pg_database WHERE datname = 'visits-"+shaB[:8]+"'"); n != 0 {
		t.Errorf("after delete, the preview's database is still there")
	}
	say(t, "\ncommit %s's database dropped with its preview; production's database holds its own visits", shaB[:8])
}

// count runs q, a count, in database db as the superuser.
func count(t *testing.T, pg *testenv.Postgres, db, q string) int {
	t.Helper()
	conn, err := pg.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

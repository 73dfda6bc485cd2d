package database_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// BenchmarkCloneVsDump measures a commit's database made from templates
// of growing size three ways: Ensure (CREATE DATABASE ... TEMPLATE, the
// default WAL_LOG strategy, plus the role and the hand-over), CREATE
// DATABASE ... STRATEGY FILE_COPY, and pg_dump | psql into an empty
// database, the copy without a template. docs/benchmarks.md has the
// figures. Its templates take minutes to fill, so it runs only with
// SHIPPER_BENCH_DATABASE=1 (make bench sets it):
//
//	SHIPPER_BENCH_DATABASE=1 go test -run '^$' -bench CloneVsDump -benchtime 3x ./internal/database
func BenchmarkCloneVsDump(b *testing.B) {
	if os.Getenv("SHIPPER_BENCH_DATABASE") == "" {
		b.Skip("set SHIPPER_BENCH_DATABASE=1: fills templates of up to 400 MB")
	}
	pg := testenv.GetPostgres(b)
	ctx := context.Background()
	admin, err := pg.ShipperAdmin(ctx, "bench_admin", "bench-pw", "bench_tpl0", "SELECT 1")
	if err != nil {
		b.Fatal(err)
	}
	for _, mb := range []int{0, 10, 100, 400} {
		tpl := fmt.Sprintf("bench_tpl%d", mb)
		if mb > 0 {
			if err := fillTemplate(ctx, pg, tpl, mb); err != nil {
				b.Fatal(err)
			}
		}
		size := mustSize(b, pg, tpl)
		e, err := database.Open(database.Config{URL: admin, Template: tpl})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("ensure/%s", size), func(b *testing.B) {
			for i := range b.N {
				c := database.Commit{Name: fmt.Sprintf("bench-%d-%d", mb, i), App: "bench", SHA: "b"}
				if _, err := e.Ensure(ctx, c, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := e.Drop(ctx, c); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("file-copy/%s", size), func(b *testing.B) {
			for i := range b.N {
				name := pq.QuoteIdentifier(fmt.Sprintf("bench-fc-%d-%d", mb, i))
				run(b, pg, "CREATE DATABASE "+name+" TEMPLATE "+tpl+" STRATEGY FILE_COPY")
				b.StopTimer()
				run(b, pg, "DROP DATABASE "+name)
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("pg_dump-psql/%s", size), func(b *testing.B) {
			for i := range b.N {
				name := fmt.Sprintf("bench-dump-%d-%d", mb, i)
				run(b, pg, "CREATE DATABASE "+pq.QuoteIdentifier(name)+" TEMPLATE template0")
				dumpRestore(b, pg, tpl, name)
				b.StopTimer()
				run(b, pg, "DROP DATABASE "+pq.QuoteIdentifier(name))
				b.StartTimer()
			}
		})
	}
}

// fillTemplate makes template tpl hold about mb megabytes: rows of 256
// characters with a primary key (its index included), as an app's tables
// would.
func fillTemplate(ctx context.Context, pg *testenv.Postgres, tpl string, mb int) error {
	rows := mb * 1024 * 1024 / 330 // measured: ~330 bytes a row with its index entry
	db, err := pg.Open("postgres")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+tpl+" OWNER bench_admin"); err != nil {
		return err
	}
	t, err := pg.Open(tpl)
	if err != nil {
		return err
	}
	defer t.Close()
	conn, err := t.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{
		"SET ROLE bench_admin",
		"CREATE TABLE visits (id bigint PRIMARY KEY, payload text NOT NULL)",
		fmt.Sprintf("INSERT INTO visits SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, %d) g", rows),
		"VACUUM ANALYZE visits",
		"RESET ROLE",
		"CHECKPOINT",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func mustSize(b *testing.B, pg *testenv.Postgres, tpl string) string {
	db, err := pg.Open("postgres")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var size string
	if err := db.QueryRow("SELECT replace(pg_size_pretty(pg_database_size($1)), ' ', '')", tpl).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return size
}

func run(b *testing.B, pg *testenv.Postgres, q string) {
	db, err := pg.Open("postgres")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
}

// dumpRestore is `pg_dump <from> | psql <to>`, as the superuser.
func dumpRestore(b *testing.B, pg *testenv.Postgres, from, to string) {
	cmd := exec.Command("/bin/sh", "-c", `"$1" --no-owner "$2" | "$3" -q -v ON_ERROR_STOP=1 "$4" >/dev/null`, "sh",
		filepath.Join(testenv.PostgresBin, "pg_dump"), pg.AdminURL(from), filepath.Join(testenv.PostgresBin, "psql"), pg.AdminURL(to))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("pg_dump | psql: %v: %s", err, strings.TrimSpace(string(out)))
	}
}

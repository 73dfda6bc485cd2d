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
// of 10 MB, 100 MB (and 1 GB) on two servers and of two shapes, three
// ways: Ensure with each copy strategy (the role, CREATE DATABASE ...
// TEMPLATE, the hand-over: what deploy runs), and a fresh empty database
// filled by pg_dump | psql, the way teams script it without a template.
// docs/benchmarks.md has the figures. Its templates take minutes to
// fill, so it runs only with SHIPPER_BENCH_DATABASE=1 (make bench sets
// it); SHIPPER_BENCH_DATABASE_GB=1 adds the 1 GB templates.
//
//	SHIPPER_BENCH_DATABASE=1 go test -run '^$' -bench CloneVsDump -benchtime 3x -timeout 60m ./internal/database
//
// Sub-benchmarks are server/shape/size/way:
//
//	server  throwaway: the test harness's PostgreSQL (fsync,
//	        synchronous_commit, full_page_writes off); durable: one with
//	        PostgreSQL's defaults (all on), as production runs it
//	shape   table: one table, a bigint primary key and a text column;
//	        app: a web app's seed, four tables with foreign keys,
//	        secondary and unique indexes, an indexed text column
//	way     ensure-wal_log, ensure-file_copy; on the durable server also
//	        the two after 64 MB of another database's pages were dirtied
//	        (-dirty: what FILE_COPY's checkpoints then write); pg_dump-psql
//
// SHIPPER_BENCH_DATABASE_LOG=FILE logs every statement's duration, each
// connection and checkpoint, in the server's log, copied to
// FILE.throwaway and FILE.durable at the end.
func BenchmarkCloneVsDump(b *testing.B) {
	if os.Getenv("SHIPPER_BENCH_DATABASE") == "" {
		b.Skip("set SHIPPER_BENCH_DATABASE=1: fills templates of 10 and 100 MB (and 1 GB with SHIPPER_BENCH_DATABASE_GB=1)")
	}
	sizes := []int{10, 100}
	if os.Getenv("SHIPPER_BENCH_DATABASE_GB") != "" {
		sizes = append(sizes, 1024)
	}
	for _, server := range []string{"throwaway", "durable"} {
		b.Run(server, func(b *testing.B) {
			bs := startBenchServer(b, server == "durable")
			for _, shape := range testenv.TemplateShapes {
				for _, mb := range sizes {
					b.Run(fmt.Sprintf("%s/%s", shape, sizeName(mb)), func(b *testing.B) {
						benchCopies(b, bs, shape, mb)
					})
				}
			}
		})
	}
}

// benchServer is a server with shipper's admin and a scratch table for
// dirtying pages.
type benchServer struct {
	pg      *testenv.Postgres
	admin   string
	durable bool
}

func startBenchServer(b *testing.B, durable bool) *benchServer {
	ctx := context.Background()
	pg := testenv.GetPostgres(b)
	if durable {
		var err error
		if pg, err = testenv.StartDurablePostgres(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pg.Stop)
	}
	admin, err := pg.ShipperAdmin(ctx, "bench_admin", "bench-pw", "bench_empty", "CREATE TABLE scratch (id int PRIMARY KEY, v text)")
	if err != nil {
		b.Fatal(err)
	}
	if to := os.Getenv("SHIPPER_BENCH_DATABASE_LOG"); to != "" {
		sqlRun(b, pg, "postgres", "ALTER SYSTEM SET log_min_duration_statement = 0", "ALTER SYSTEM SET log_checkpoints = on",
			"ALTER SYSTEM SET log_connections = on", "SELECT pg_reload_conf()")
		// Before the server's directory goes (cleanups run last first).
		b.Cleanup(func() {
			log, err := os.ReadFile(filepath.Join(pg.Dir, "postgres.log"))
			if err == nil {
				err = os.WriteFile(fmt.Sprintf("%s.%s", to, map[bool]string{true: "durable", false: "throwaway"}[durable]), log, 0o644)
			}
			if err != nil {
				b.Error(err)
			}
		})
	}
	return &benchServer{pg: pg, admin: admin, durable: durable}
}

func sizeName(mb int) string {
	if mb >= 1024 {
		return fmt.Sprintf("%dGB", mb/1024)
	}
	return fmt.Sprintf("%dMB", mb)
}

// benchCopies fills the template of shape and mb megabytes, then times
// each way of copying it.
func benchCopies(b *testing.B, bs *benchServer, shape string, mb int) {
	tpl := fmt.Sprintf("bench_%s_%d", shape, mb)
	if err := bs.pg.FillTemplate(context.Background(), tpl, "bench_admin", shape, mb); err != nil {
		b.Fatal(err)
	}
	size := templateBytes(b, bs.pg, tpl)
	report := func(b *testing.B) { b.ReportMetric(float64(size)/(1<<20), "template-MB") }
	for _, strategy := range []string{database.StrategyWALLog, database.StrategyFileCopy} {
		e, err := database.Open(database.Config{URL: bs.admin, Template: tpl, Strategy: strategy})
		if err != nil {
			b.Fatal(err)
		}
		variants := []bool{false}
		if bs.durable {
			variants = append(variants, true)
		}
		for _, dirty := range variants {
			name := "ensure-" + strategy
			if dirty {
				name += "-dirty"
			}
			b.Run(name, func(b *testing.B) {
				for i := range b.N {
					b.StopTimer()
					if dirty {
						sqlRun(b, bs.pg, "bench_empty", "TRUNCATE scratch", "INSERT INTO scratch SELECT g, repeat('x', 200) FROM generate_series(1, 250000) g")
					}
					c := database.Commit{Name: fmt.Sprintf("bench-%d", i), App: "bench", SHA: "b"}
					b.StartTimer()
					if _, err := e.Ensure(context.Background(), c, nil); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if _, err := e.Drop(context.Background(), c); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				report(b)
			})
		}
	}
	b.Run("pg_dump-psql", func(b *testing.B) {
		for i := range b.N {
			name := fmt.Sprintf("bench-dump-%d", i)
			dumpRestore(b, bs.pg, tpl, name)
			b.StopTimer()
			sqlRun(b, bs.pg, "postgres", "DROP DATABASE "+pq.QuoteIdentifier(name))
			b.StartTimer()
		}
		report(b)
	})
}

// dumpRestore is what a team's script runs to copy a seeded database
// without a template: createdb, then plain pg_dump piped to psql, as the
// superuser.
func dumpRestore(b *testing.B, pg *testenv.Postgres, from, to string) {
	bin := func(name string) string { return filepath.Join(testenv.PostgresBin, name) }
	cmd := exec.Command("/bin/sh", "-c", `"$1" "$2" | "$3" -q -v ON_ERROR_STOP=1 "$4" >/dev/null`, "sh",
		bin("pg_dump"), pg.AdminURL(from), bin("psql"), pg.AdminURL(to))
	create := exec.Command(bin("createdb"), "--maintenance-db="+pg.AdminURL("postgres"), to)
	for _, c := range []*exec.Cmd{create, cmd} {
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", c.Args[0], err, strings.TrimSpace(string(out)))
		}
	}
}

func templateBytes(b *testing.B, pg *testenv.Postgres, tpl string) int64 {
	db, err := pg.Open("postgres")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var size int64
	if err := db.QueryRow("SELECT pg_database_size($1)", tpl).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return size
}

// sqlRun runs statements qs in database db as the superuser, on one
// connection.
func sqlRun(b *testing.B, pg *testenv.Postgres, db string, qs ...string) {
	if err := pg.ExecAll(context.Background(), db, qs...); err != nil {
		b.Fatal(err)
	}
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// BenchmarkDeployToServing times `shipper deploy` of examples/hello on
// the real node, the whole process, from its start to the first 200 from
// the commit's host through Traefik (ingress router), three ways: without
// a database, and with a database copied from a template of 10 MB and of
// 100 MB (the app shape of internal/testenv's FillTemplate: four tables,
// foreign keys, indexes) on the harness's PostgreSQL, reached by the pods
// at the node's bridge. Each round deploys a new commit each way, in an
// order rotated from round to round, then deletes them (not timed); the
// image is packaged once. docs/benchmarks.md has the figures.
//
//	flock /tmp/shipper-node.lock make bench-node
//
// SHIPPER_BENCH_ROUNDS sets the rounds (default 5).
func BenchmarkDeployToServing(b *testing.B) {
	rounds := 5
	if s := os.Getenv("SHIPPER_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("SHIPPER_BENCH_ROUNDS=%q: want a count, 1 or more", s)
		}
		rounds = n
	}
	ctx := context.Background()
	c := startNode(b, b.Logf)
	c.router = routers[slices.IndexFunc(routers, func(r router) bool { return r.name == "ingress" })]
	c.app = "bench"
	pg, err := testenv.StartPostgresFor(ctx, true)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pg.Stop)
	admin, err := pg.ShipperAdmin(ctx, "shipper_admin", "bench-admin-pw-3c1d", "tpl_empty", "SELECT 1")
	if err != nil {
		b.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(pg.Host)
	type way struct {
		name  string
		extra []string // the job's variables
	}
	ways := []way{{name: "no-database"}}
	for _, mb := range []int{10, 100} {
		tpl := fmt.Sprintf("tpl_app_%d", mb)
		if err := pg.FillTemplate(ctx, tpl, "shipper_admin", "app", mb); err != nil {
			b.Fatal(err)
		}
		ways = append(ways, way{fmt.Sprintf("database-%dMB", mb), []string{"SHIPPER_DATABASE_URL=" + admin, "SHIPPER_DATABASE_TEMPLATE=" + tpl,
			"SHIPPER_DATABASE_HOST=" + testenv.NodeGateway + ":" + port}})
	}
	ref, errOut, code := c.try(sha(0, 0), "package")
	if code != 0 {
		b.Fatalf("shipper package: exit %d: %s", code, errOut)
	}
	c.extra = append(c.extra, "SHIPPER_IMAGE_REF="+strings.TrimSpace(ref))

	times := make([][]time.Duration, len(ways))
	b.ResetTimer()
	for r := range rounds {
		for k := range ways {
			w := (r + k) % len(ways)
			d := c
			d.extra = append(slices.Clip(c.extra), ways[w].extra...)
			took, exited, errOut, err := d.deployToServing(sha(r+1, w))
			if err != nil {
				b.Fatalf("round %d, %s: %v", r+1, ways[w].name, err)
			}
			times[w] = append(times[w], took)
			// Printed, not logged: a benchmark's log is cut at 10 lines.
			fmt.Printf("round %d, %-14s serving after %.2f s (deploy exited after %.2f s)%s\n", r+1, ways[w].name, took.Seconds(), exited.Seconds(), readyLine(errOut))
		}
		b.StopTimer()
		for w := range ways {
			d := c
			d.extra = append(slices.Clip(c.extra), ways[w].extra...)
			if _, errOut, code := d.try(sha(r+1, w), "delete"); code != 0 {
				b.Fatalf("shipper delete: exit %d: %s", code, errOut)
			}
		}
		b.StartTimer()
	}
	for w, way := range ways {
		b.ReportMetric(median(times[w]).Seconds(), "s-median-"+way.name)
		if w > 0 {
			ratios := make([]time.Duration, rounds)
			for r := range rounds {
				// A ratio as a Duration, in thousandths, to take its median.
				ratios[r] = times[w][r] * 1000 / times[0][r]
			}
			fmt.Printf("%s: median %.2f s, min %.2f, max %.2f; paired against no database: median %.2fx\n", way.name,
				median(times[w]).Seconds(), slices.Min(times[w]).Seconds(), slices.Max(times[w]).Seconds(), float64(median(ratios))/1000)
		} else {
			fmt.Printf("%s: median %.2f s, min %.2f, max %.2f\n", way.name, median(times[w]).Seconds(), slices.Min(times[w]).Seconds(), slices.Max(times[w]).Seconds())
		}
	}
}

// sha is the commit of round r, way w: 40 hex digits.
func sha(r, w int) string { return fmt.Sprintf("be%02x%02x%034x", r, w, r*16+w) }

// readyLine is deploy's progress line saying the database is ready (with
// the seconds since its start), or "".
func readyLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "database ready") {
			return "; " + strings.TrimSpace(l)
		}
	}
	return ""
}

// deployToServing runs `shipper deploy` of commit sha and returns the time
// from its start to the first 200 from the commit's host answering the
// commit's version, polled every 20 ms from the start, the time until
// deploy exited, and its stderr.
func (c *cluster) deployToServing(sha string) (serving, exited time.Duration, stderr string, err error) {
	host := c.app + "-" + sha[:8] + "." + c.router.domain
	start := time.Now()
	served := make(chan time.Duration, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if code, body := c.get(host, "/version"); code == 200 && body == sha[:8] {
				served <- time.Since(start)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	out, errOut, code := c.try(sha, "deploy")
	exited = time.Since(start)
	if code != 0 {
		return 0, 0, "", fmt.Errorf("shipper deploy: exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(out); got != "http://"+host {
		return 0, 0, "", fmt.Errorf("shipper deploy printed %q, want http://%s", got, host)
	}
	select {
	case d := <-served:
		return d, exited, errOut, nil
	case <-time.After(60 * time.Second):
		return 0, 0, "", fmt.Errorf("http://%s/version did not answer 200 %s within a minute of the deploy", host, sha[:8])
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

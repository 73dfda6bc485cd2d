package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"helm.sh/helm/v3/pkg/action"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// The scale benchmark fills the real apiserver with N previews across M
// apps (release records, namespaces, RoleBindings, Deployments, Services,
// Ingresses: what a deploy makes, without pods) and times, at each
// population, shipper's commands against the helm CLI doing the same
// work, both as whole processes, as a CI job runs them: process start,
// kubeconfig, discovery and all. Each side's peak RSS is GNU time's, and
// its API requests the apiserver's own count around the runs.

// scaleApps is M: the previews are spread over this many apps.
const scaleApps = 50

// scalePopulations is the curve: SHIPPER_BENCH_SCALE (comma-separated
// preview counts, filled one after the other), else 1,000.
func scalePopulations(b *testing.B) []int {
	spec := os.Getenv("SHIPPER_BENCH_SCALE")
	if spec == "" {
		return []int{1000}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < scaleApps*2 {
			b.Fatalf("SHIPPER_BENCH_SCALE=%q: want counts of at least %d, like 100,300,1000", spec, scaleApps*2)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// scaleSHA is commit i of an app.
func scaleSHA(i int) string { return fmt.Sprintf("%08x", 0xc0000000+i) + strings.Repeat("5", 32) }

// scaleFill deploys commits of the M apps, round-robin, until the
// population is n, 8 at a time, logging progress; have is how many are
// there already.
func scaleFill(b *testing.B, env *testenv.Env, apps []string, have, n int) {
	b.Helper()
	cfg, err := release.NewConfiguration(env.AdminConfig())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var done atomic.Int64
	var g errgroup.Group
	g.SetLimit(8)
	for i := have; i < n; i++ {
		app, sha := apps[i%len(apps)], scaleSHA(i/len(apps))
		g.Go(func() error {
			names, err := release.NewNames(app, sha)
			if err != nil {
				return err
			}
			d := release.NewDeploy(cfg)
			d.Hosts, d.Wait = release.Hosts{Domain: "example.com"}, false
			if _, err := d.Run(context.Background(), names, env.Registry.Repository("bench/app")+":v1"); err != nil {
				return fmt.Errorf("filling %s: %w", names.Release, err)
			}
			if k := done.Add(1); k%100 == 0 {
				b.Logf("filled %d of %d previews (%v)", int(k)+have, n, time.Since(start).Round(time.Second))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("population %d previews over %d apps, filled in %v", n, len(apps), time.Since(start).Round(time.Second))
}

// scaleOp is one operation with its anchor: each run is one process.
type scaleOp struct {
	name          string
	shipper, helm func(i int) []string // argv of iteration i
	helmName      string
}

// BenchmarkScale runs at each population (SHIPPER_BENCH_SCALE) the rows
// below, SHIPPER_BENCH_OPS (6) processes a side each; run it with
// -benchtime 1x (make bench does): one pass is the measurement.
func BenchmarkScale(b *testing.B) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	env := testenv.Get(b)
	cs, err := env.AdminClient()
	if err != nil {
		b.Fatal(err)
	}
	helmBin, err := testenv.Binary("helm")
	if err != nil {
		b.Fatal(err)
	}
	shipper := binary(b)
	work := b.TempDir()
	chart, err := filepath.Abs("../charts/preview-app")
	if err != nil {
		b.Fatal(err)
	}
	ops := 6 // even: promote and rollback rows end where they began
	if s := os.Getenv("SHIPPER_BENCH_OPS"); s != "" {
		if ops, err = strconv.Atoi(s); err != nil || ops < 1 {
			b.Fatalf("SHIPPER_BENCH_OPS=%q: want a positive count", s)
		}
	}
	apps := make([]string, scaleApps)
	prefix := uniqueName("s")
	for i := range apps {
		apps[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	app := apps[0] // the app the operations act on
	rel := func(sha string) string { return app + "-" + sha[:8] }
	prod := app + "-production"
	image := env.Registry.Repository("bench/app")

	// run times one process under GNU time: seconds, peak MiB, and the
	// API requests shipper counted itself (-v ends with api-requests=N;
	// -1 for helm, which does not count).
	rss := filepath.Join(work, "rss")
	counted := regexp.MustCompile(`done api-requests=(\d+)`)
	run := func(argv []string) (float64, float64, int) {
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rss}, argv...)...)
		cmd.Env = []string{"HOME=" + work, "PATH=/usr/bin:/bin", "KUBECONFIG=" + env.Kubeconfig, "SHIPPER_DOMAIN=example.com", "SHIPPER_PROTECT=none"}
		if argv[0] == shipper {
			cmd.Env = append(cmd.Env, "SHIPPER_VERBOSE=true")
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start).Seconds()
		if err != nil {
			b.Fatalf("%v: %v\n%s", argv, err, out)
		}
		data, _ := os.ReadFile(rss)
		kb, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		requests := -1
		if m := counted.FindSubmatch(out); m != nil {
			requests, _ = strconv.Atoi(string(m[1]))
		}
		return took, float64(kb) / 1024, requests
	}
	// measure runs ops processes: the median ms (2 cores shared with the
	// apiserver and etcd: a mean moves with one slow run), peak MiB, the
	// apiserver's count of requests per run, and the client's own
	// (shipper's; -1 for helm).
	measure := func(argv func(i int) []string) (ms, peak, requests, client float64) {
		before := apiRequests(b, cs)
		times := make([]float64, ops)
		for i := 0; i < ops; i++ {
			t, p, n := run(argv(i))
			times[i] = t
			peak = max(peak, p)
			client += float64(n)
		}
		sort.Float64s(times)
		median := (times[(ops-1)/2] + times[ops/2]) / 2
		return median * 1000, peak, (apiRequests(b, cs) - before) / float64(ops), client / float64(ops)
	}

	fresh := 0 // new commits deployed by the deploy rows, per side
	newSHA := func(side string, i int) string {
		return fmt.Sprintf("%s%07x", map[string]string{"shipper": "d", "helm": "e"}[side], fresh+i) + strings.Repeat("7", 32)
	}
	one, two := scaleSHA(0), scaleSHA(1)
	global := []string{"--app", app} // and SHIPPER_DOMAIN, for the commands that take it
	rows := []scaleOp{
		{name: "list", helmName: "helm list -A --max 0",
			shipper: func(int) []string { return append([]string{shipper, "list"}, global...) },
			helm:    func(int) []string { return []string{helmBin, "list", "-A", "--max", "0"} }},
		{name: "list-all-apps", helmName: "helm list -A --max 0",
			shipper: func(int) []string { return []string{shipper, "list", "--all-apps"} },
			helm:    func(int) []string { return []string{helmBin, "list", "-A", "--max", "0"} }},
		{name: "status", helmName: "helm status <app>-production",
			shipper: func(int) []string { return append([]string{shipper, "status"}, global...) },
			helm:    func(int) []string { return []string{helmBin, "status", prod, "-n", prod} }},
		{name: "promote", helmName: "helm upgrade <app>-production --reuse-values",
			shipper: func(i int) []string {
				sha := []string{two, one}[i%2]
				return append([]string{shipper, "promote", "--sha", sha, "--drain-delay", "0"}, global...)
			},
			helm: func(i int) []string {
				sha := []string{two, one}[i%2]
				// --labels: the record says which commit it routes to, as
				// shipper's do (Helm copies the previous revision's labels).
				return []string{helmBin, "upgrade", prod, chart, "-n", prod, "--reuse-values",
					"--labels", "shipper.dev/sha=" + sha[:8] + ",shipper.dev/commit=" + sha,
					"--set", "sha=" + sha, "--set", "shortSha=" + sha[:8],
					"--set", "production.target.release=" + rel(sha), "--set", "production.target.namespace=" + rel(sha),
					"--set", "production.target.sha=" + sha}
			}},
		{name: "rollback", helmName: "helm rollback <app>-production",
			shipper: func(int) []string { return append([]string{shipper, "rollback", "--drain-delay", "0"}, global...) },
			helm:    func(int) []string { return []string{helmBin, "rollback", prod, "-n", prod} }},
		{name: "deploy", helmName: "helm upgrade --install --create-namespace",
			shipper: func(i int) []string {
				sha := newSHA("shipper", i)
				return append([]string{shipper, "deploy", "--sha", sha, "--image", image + ":v1", "--wait=false", "--resolve=false"}, global...)
			},
			helm: func(i int) []string {
				sha := newSHA("helm", i)
				return []string{helmBin, "upgrade", "--install", rel(sha), chart, "--namespace", rel(sha), "--create-namespace",
					"--set", "app=" + app, "--set", "sha=" + sha, "--set", "shortSha=" + sha[:8],
					"--set", "image.repository=" + image, "--set", "image.tag=v1", "--set", "ingress.host=" + rel(sha) + ".example.com"}
			}},
	}

	have := 0
	pops := scalePopulations(b)
	last := pops[len(pops)-1]
	for _, n := range pops {
		scaleFill(b, env, apps, have, n)
		time.Sleep(5 * time.Second) // the fill's last writes reach the watch caches; etcd compacts
		if have == 0 {
			run(append([]string{shipper, "promote", "--sha", one}, global...))
		}
		have = n
		if dir := os.Getenv("SHIPPER_BENCH_HOLD"); dir != "" && n == last {
			scaleHold(b, dir, env, work, rows)
			return
		}
		b.Run(fmt.Sprintf("previews=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for _, r := range rows {
					sms, speak, sreq, sclient := measure(r.shipper)
					hms, hpeak, hreq, _ := measure(r.helm)
					b.Logf("%-13s shipper %7.1f ms %5.1f MiB %6.1f requests (%.1f counted by shipper) | %s %7.1f ms %5.1f MiB %6.1f requests | ratio %.2f",
						r.name, sms, speak, sreq, sclient, r.helmName, hms, hpeak, hreq, sms/hms)
					b.ReportMetric(sms, r.name+"-ms")
					b.ReportMetric(sms/hms, r.name+"-x-helm")
					b.ReportMetric(sclient, r.name+"-requests")
					b.ReportMetric(speak, r.name+"-peak-MiB")
				}
				// The Helm SDK's list of every release (what `helm list -A`
				// runs), in this process: no process start, no discovery.
				sdk := helmSDKList(b, env)
				b.Logf("Helm SDK action.List (all namespaces, in process) %7.1f ms", sdk)
				b.ReportMetric(sdk, "helm-sdk-list-ms")
				if n == last { // 400 more previews: the end of the curve
					scalePrune(b, env, cs, shipper, helmBin, run)
				}
				fresh += ops
			}
		})
	}
}

// helmSDKList times the Helm SDK's list of every release in every
// namespace (action.List, AllNamespaces, the Secrets driver: `helm list -A
// --max 0` without the process): the mean of 3 runs, in ms.
func helmSDKList(b *testing.B, env *testenv.Env) float64 {
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig = &env.Kubeconfig
	cfg := new(action.Configuration)
	if err := cfg.Init(getter, "", "secret", func(string, ...any) {}); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for range 3 {
		l := action.NewList(cfg)
		l.AllNamespaces, l.Limit = true, 0 // as --max 0; the default states, as the CLI row
		l.SetStateMask()
		start := time.Now()
		if _, err := l.Run(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	return float64(total.Milliseconds()) / 3
}

// scalePrune removes 200 expired previews of one more app among the
// population, as whole processes: one `shipper prune --max-age` against
// `helm uninstall` then `kubectl delete namespace --wait=false` of each
// (BenchmarkPrune200's sides), each on a fill of its own, not timed.
func scalePrune(b *testing.B, env *testenv.Env, cs kubernetes.Interface, shipper, helmBin string, run func([]string) (float64, float64, int)) {
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	app, _ := fillPreviews(b, env, expired)
	before := apiRequests(b, cs)
	sec, peak, counted := run([]string{shipper, "prune", "--app", app, "--max-age", "1ns"})
	requests := apiRequests(b, cs) - before
	if left := activeNamespaces(b, env, app); len(left) != 0 {
		b.Fatalf("shipper prune left %d namespaces", len(left))
	}
	_, releases := fillPreviews(b, env, expired)
	before = apiRequests(b, cs)
	start := time.Now()
	for _, rel := range releases {
		run([]string{helmBin, "uninstall", rel, "--namespace", rel})
		run([]string{kubectl, "delete", "namespace", rel, "--wait=false"})
	}
	helmSec, helmRequests := time.Since(start).Seconds(), apiRequests(b, cs)-before
	b.Logf("prune of %d shipper %.1f s %5.1f MiB %.0f requests (%d counted by shipper) | helm uninstall + kubectl delete namespace, %d processes %.1f s %.0f requests | ratio %.2f",
		expired, sec, peak, requests, counted, 2*len(releases), helmSec, helmRequests, sec/helmSec)
	b.ReportMetric(sec*1000, "prune200-ms")
	b.ReportMetric(sec/helmSec, "prune200-x-helm")
	b.ReportMetric(helmSec*1000, "prune200-helm-ms")
	b.ReportMetric(float64(counted), "prune200-requests")
	b.ReportMetric(peak, "prune200-peak-MiB")
}

// scaleHoldRuns is how many commands of each row and side a held fixture
// has ready: the deploy rows deploy a new commit each run.
const scaleHoldRuns = 500

// scaleHold keeps the filled fixture for a timer of the caller's choice
// (SHIPPER_BENCH_HOLD=DIR): paired series of whole processes on a quiet
// machine, which the benchmark's own back-to-back runs are not. It writes
// into DIR the environment (env), the commands of every row and side, one
// run a line (<row>.shipper, <row>.helm), and a runner, then waits until
// DIR/stop exists. `sh DIR/run deploy.shipper` runs the next line of that
// file; time it against `sh DIR/run deploy.helm`, both sides through the
// same runner, for example with hyperfine or /usr/bin/time.
func scaleHold(b *testing.B, dir string, env *testenv.Env, home string, rows []scaleOp) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("env", fmt.Sprintf("export HOME=%s PATH=/usr/bin:/bin KUBECONFIG=%s SHIPPER_DOMAIN=example.com SHIPPER_PROTECT=none\n",
		home, env.Kubeconfig))
	// Shell builtins only, and the command sourced from a file of its own
	// (exec ...): the runner's time is on both sides of a comparison and
	// neither tool's. Its first version ran dirname, cat and sed (16 ms
	// of a 130 ms deploy, against 3 ms now, timed against /bin/true);
	// dash's read takes a byte a system call, so a loop over ROW.SIDE to
	// its Nth line cost more still, and reading even the one line would
	// cost a longer command (helm's) more.
	write("run", `#!/bin/sh
# run ROW.SIDE: exec the next command of DIR/ROW.SIDE (one a line; the
# Nth also in ROW.SIDE.d/N, as "exec ..."; a counter per file in
# ROW.SIDE.n), in DIR/env's environment.
case $0 in */*) d=${0%/*} ;; *) d=. ;; esac
f="$d/$1"
n=1
[ -r "$f.n" ] && read -r n <"$f.n"
echo $((n + 1)) >"$f.n"
. "$d/env"
[ -r "$f.d/$n" ] || { echo "run: $f has no line $n" >&2; exit 1; }
. "$f.d/$n"
`)
	for _, r := range rows {
		for side, argv := range map[string]func(int) []string{"shipper": r.shipper, "helm": r.helm} {
			var lines strings.Builder
			if err := os.MkdirAll(filepath.Join(dir, r.name+"."+side+".d"), 0o755); err != nil {
				b.Fatal(err)
			}
			// A counter left by an earlier fixture in dir starts anew.
			if err := os.Remove(filepath.Join(dir, r.name+"."+side+".n")); err != nil && !os.IsNotExist(err) {
				b.Fatal(err)
			}
			for i := range scaleHoldRuns {
				args := argv(i)
				line := strings.Join(args, " ")
				if strings.ContainsAny(line, "'\"\\$`*?[") || slices.ContainsFunc(args, func(a string) bool { return strings.ContainsAny(a, " \t\n") }) {
					b.Fatalf("row %s: %q needs quoting, which the runner does not do", r.name, line)
				}
				write(fmt.Sprintf("%s.%s.d/%d", r.name, side, i+1), "exec "+line+"\n")
				lines.WriteString(line + "\n")
			}
			write(r.name+"."+side, lines.String())
		}
	}
	b.Logf("fixture held: `sh %s/run ROW.SIDE` runs the next command; touch %s/stop to end", dir, dir)
	for {
		if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

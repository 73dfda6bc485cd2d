package integration

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// expired is how many previews each prune benchmark removes.
const expired = 200

// fillPreviews deploys n commits of a new app (scaleFill: no wait, 8 at
// a time) and returns the app and its releases.
func fillPreviews(b *testing.B, env *testenv.Env, n int) (string, []string) {
	b.Helper()
	app := uniqueName("prune")
	scaleFill(b, env, []string{app}, 0, n)
	releases := make([]string, n)
	for i := range releases {
		releases[i] = app + "-" + scaleSHA(i)[:8]
	}
	return app, releases
}

// apiRequests is the apiserver's count of requests served so far (the sum
// of apiserver_request_total): the difference around a run is the requests
// it made, whatever process made them, plus the apiserver's own few.
func apiRequests(b *testing.B, cs kubernetes.Interface) float64 {
	b.Helper()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// BenchmarkPrune200 removes 200 expired previews of one app, as whole
// processes: one `shipper prune --max-age` against, as a hand-written
// cleanup job does it, `helm uninstall` and `kubectl delete namespace` of
// each, one after the other. Both sides delete the same releases and
// namespaces (the harness runs no namespace controller: the namespaces are
// left Terminating on both sides); the fill is not timed.
func BenchmarkPrune200(b *testing.B) {
	// The fill runs shipper's release engine in this process: its
	// client-go leader election logs through klog, to nowhere here.
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
	kubectl, err := testenv.Binary("kubectl")
	if err != nil {
		b.Fatal(err)
	}
	shipper := binary(b)
	home := b.TempDir()
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "KUBECONFIG=" + env.Kubeconfig, "SHIPPER_PROTECT=none"}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	// removal times remove on a fresh fill per iteration, counts the
	// apiserver's requests, and checks every preview namespace is gone.
	removal := func(name string, remove func(app string, releases []string)) {
		b.Run(name, func(b *testing.B) {
			var requests float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				app, releases := fillPreviews(b, env, expired)
				before := apiRequests(b, cs)
				b.StartTimer()
				remove(app, releases)
				b.StopTimer()
				requests += apiRequests(b, cs) - before
				if left := activeNamespaces(b, env, app); len(left) != 0 {
					b.Fatalf("%s left %d namespaces", name, len(left))
				}
			}
			b.ReportMetric(requests/float64(b.N), "requests/op")
		})
	}
	removal("shipper-prune", func(app string, _ []string) {
		run(shipper, "prune", "--app", app, "--max-age", "1ns")
	})
	removal("helm-uninstall+kubectl-delete-ns", func(_ string, releases []string) {
		for _, rel := range releases {
			run(helmBin, "uninstall", rel, "--namespace", rel)
			run(kubectl, "delete", "namespace", rel, "--wait=false")
		}
	})
}

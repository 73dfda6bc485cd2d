package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkGateLatency measures what the gate adds (issue 27: under 1 ms
// p50, under 15 MiB a preview): a steady load of GETs, one every
// millisecond on one keep-alive connection, to the app directly and
// through a shipper-gate process (the real binary, with the bypass
// header so each request is checked and forwarded), the same requests on
// both sides. It reports both sides' p50 and p99 and the gate process's
// peak resident memory (VmHWM).
func BenchmarkGateLatency(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello from the app"))
	}))
	defer app.Close()
	// shipper-gate, the binary a protected preview's pod runs, built as
	// `make build` builds it.
	cmd, addr := startGateCommand(b, []string{gateBinary(b)}, nil, nil, "--app", "myapp", "--sha", "7c77eb36", "--upstream", app.URL)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	const requests = 2000
	load := func(target string, bypass bool) []time.Duration {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		var out []time.Duration
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for len(out) < requests {
			<-tick.C
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			req.Host = "myapp-7c77eb36.example.com"
			if bypass {
				req.Header.Set("X-Shipper-Bypass", "automation-0123456789")
			}
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				continue // the gate still starting
			}
			_, _ = resp.Body.Read(make([]byte, 64))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d", target, resp.StatusCode)
			}
			out = append(out, time.Since(start))
		}
		return out
	}
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
	}
	for i := 0; i < b.N; i++ {
		direct := load(app.URL+"/", false)
		gated := load("http://"+addr+"/", true)
		b.ReportMetric(pct(direct, 0.5), "direct-p50-ms")
		b.ReportMetric(pct(direct, 0.99), "direct-p99-ms")
		b.ReportMetric(pct(gated, 0.5), "gate-p50-ms")
		b.ReportMetric(pct(gated, 0.99), "gate-p99-ms")
	}
	b.ReportMetric(vmHWM(b, cmd.Process.Pid), "gate-peak-MiB")
}

// vmHWM is the peak resident memory of process pid, in MiB.
func vmHWM(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

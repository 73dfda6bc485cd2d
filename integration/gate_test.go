package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/gate"
)

const testGateKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

// TestGateProcess runs the real binary in front of an app, as the
// preview's pod would: a plain request gets the login page (401), the
// bypass header the app, and SIGTERM stops it with exit 0.
func TestGateProcess(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app %s bypass=%q", r.URL.Path, r.Header.Get("X-Shipper-Bypass"))
	}))
	defer app.Close()
	var stderr strings.Builder
	cmd, addr := startGate(t, app.URL, &stderr, gate.PasswordVar+"=s3cret")
	defer cmd.Process.Kill()
	get := func(bypass string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/hello", nil)
		req.Host = "myapp-7c77eb36.example.com"
		if bypass != "" {
			req.Header.Set("X-Shipper-Bypass", bypass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if code, _ := get(""); code != 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get(""); code != http.StatusUnauthorized || !strings.Contains(body, "This preview is protected") {
		t.Errorf("plain GET: %d %q, want 401 and the login page", code, body)
	}
	if code, body := get("automation-0123456789"); code != http.StatusOK || body != `app /hello bypass=""` {
		t.Errorf("with the bypass: %d %q, want the app, without the header", code, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v; stderr %q", err, stderr.String())
	}
}

// startGate starts the real binary's `shipper gate --app myapp --sha
// 7c77eb36` in front of upstream, with the test key, the bypass secret
// "automation-0123456789" and env, on a free loopback port it returns.
func startGate(tb testing.TB, upstream string, stderr io.Writer, env ...string) (*exec.Cmd, string) {
	tb.Helper()
	return startGateArgs(tb, stderr, env, "--app", "myapp", "--sha", "7c77eb36", "--upstream", upstream)
}

// startGateArgs is startGate with the flags args (over http, on a free
// loopback port it returns).
func startGateArgs(tb testing.TB, stderr io.Writer, env []string, args ...string) (*exec.Cmd, string) {
	return startGateCommand(tb, []string{binary(tb), "gate"}, stderr, env, args...)
}

// startGateCommand is startGateArgs with the command given: `shipper
// gate`, or shipper-gate, the sidecar's binary.
func startGateCommand(tb testing.TB, command []string, stderr io.Writer, env []string, args ...string) (*exec.Cmd, string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(command[0], append(append(command[1:], "--listen", addr, "--url-scheme", "http"), args...)...)
	cmd.Env = append([]string{gate.KeyVar + "=" + testGateKey, gate.BypassVar + "=automation-0123456789"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with a test binary that is killed
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, addr
}

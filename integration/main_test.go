package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// Exit codes of the contract documented in docs/commands.md that these
// tests check, read as a CI job reads them, from the process.
const (
	exitUsage       = 2
	exitUnreachable = 3
)

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if built.dir != "" {
			os.RemoveAll(built.dir)
		}
	})
}

// built holds the binaries this test process runs, each built once, in one
// temporary folder that TestMain removes.
var built struct {
	dirOnce       sync.Once
	dir           string
	dirErr        error
	shipper, gate artifact
}

type artifact struct {
	once sync.Once
	path string
	err  error
}

// binary builds the shipper binary once per test run: these tests run the
// real executable, as a GitLab job does.
func binary(t testing.TB) string {
	t.Helper()
	return build(t, &built.shipper, "shipper")
}

// gateBinary builds shipper-gate, the binary a protected preview's pod
// runs, once per test run.
func gateBinary(t testing.TB) string {
	t.Helper()
	return build(t, &built.gate, "shipper-gate")
}

// build builds ../cmd/<name> into the test run's folder once. As `make
// build` ships it: static, stripped (the benchmarks measure this binary's
// memory, which its size changes).
func build(t testing.TB, a *artifact, name string) string {
	t.Helper()
	built.dirOnce.Do(func() { built.dir, built.dirErr = os.MkdirTemp("", "shipper-bin-") })
	if built.dirErr != nil {
		t.Fatal(built.dirErr)
	}
	a.once.Do(func() {
		a.path = filepath.Join(built.dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", a.path, "../cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			a.err = err
			t.Logf("%s", out)
		}
	})
	if a.err != nil {
		t.Fatalf("building %s: %v", name, a.err)
	}
	return a.path
}

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs shipper with only the given environment (plus PATH and
// HOME), the way a CI job passes its variables.
func runBinary(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds the shipper binary once per test run: these tests run the
// real executable, as a GitLab job does.
func binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "shipper-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "shipper")
		// As `make build` ships it: static, stripped (the benchmarks
		// measure this binary's memory, which its size changes).
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", built.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = err
			t.Logf("%s", out)
		}
	})
	if built.err != nil {
		t.Fatalf("building shipper: %v", built.err)
	}
	return built.path
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

func TestPackageWithGitLabVariables(t *testing.T) {
	env := testenv.Get(t)
	reg := env.Registry
	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	gitlab := map[string]string{
		"CI_REGISTRY_IMAGE":    reg.Repository("group/app"),
		"CI_COMMIT_SHORT_SHA":  "7c77eb36",
		"CI_COMMIT_SHA":        "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90",
		"CI_COMMIT_TIMESTAMP":  "2026-11-25T19:44:38+00:00",
		"CI_PROJECT_URL":       "https://gitlab.example.com/group/app",
		"CI_REGISTRY_USER":     reg.Username,
		"CI_REGISTRY_PASSWORD": reg.Password,
		"SHIPPER_CONTEXT":      app,
		"SHIPPER_ENTRYPOINT":   "/app/server",
	}
	r := runBinary(t, gitlab, "package")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	prefix := reg.Repository("group/app") + ":7c77eb36@sha256:"
	if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) {
		t.Errorf("stdout %q, want one line %s...", r.stdout, prefix)
	}
	if !strings.Contains(r.stderr, "packed app layer") {
		t.Errorf("stderr lacks progress:\n%s", r.stderr)
	}
	again := runBinary(t, gitlab, "package")
	if again.code != 0 || again.stdout != r.stdout {
		t.Errorf("re-packaging gave exit %d and %q, want the same reference %q", again.code, again.stdout, r.stdout)
	}

	for _, tc := range []struct {
		name     string
		override map[string]string
		args     []string
		code     int
		stderr   string
	}{
		{"wrong password", map[string]string{"CI_REGISTRY_PASSWORD": "wrong-secret-0042"}, nil, exitUnreachable, "credentials refused"},
		{"bad sha", map[string]string{"CI_COMMIT_SHORT_SHA": "nothex!"}, nil, exitUsage, `invalid commit SHA "nothex!": must be 7 to 40 hexadecimal characters`},
		{"no image", map[string]string{"CI_REGISTRY_IMAGE": ""}, nil, exitUsage, "--image is empty"},
		{"missing context", nil, []string{"--context", "/nonexistent/app"}, exitUsage, "/nonexistent/app: build context must be a readable directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range gitlab {
				e[k] = v
			}
			for k, v := range tc.override {
				e[k] = v
			}
			r := runBinary(t, e, append([]string{"package"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("exit %d stdout %q stderr %q; want exit %d, no stdout, stderr containing %q", r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
			for _, secret := range []string{reg.Password, "wrong-secret-0042"} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("a password reached the output:\n%s%s", r.stdout, r.stderr)
				}
			}
		})
	}
}

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

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

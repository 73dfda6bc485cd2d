package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDetection runs `shipper package` without --entrypoint and
// --cmd, offline: the registry is unreachable, so it stops at the push
// (exit 3), after detection and the build on a scratch base. (An invalid
// repository name no longer gets that far: it is refused before the
// build.)
func TestPackageDetection(t *testing.T) {
	for _, v := range []string{"SHIPPER_ENTRYPOINT", "SHIPPER_CMD", "SHIPPER_BASE", "SHIPPER_PORT", "SHIPPER_CONTEXT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	const unreachable = "127.0.0.1:1/app"
	empty := t.TempDir()
	phpNothing := t.TempDir()
	if err := os.WriteFile(filepath.Join(phpNothing, "composer.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // parts of stderr
		not  string   // not in stderr
	}{
		{"undetectable without --base", []string{"--context", empty}, exitUsage,
			[]string{empty + ": nothing detected to run (no app kind recognized): none of composer.json", "; set --entrypoint or --cmd (SHIPPER_ENTRYPOINT, SHIPPER_CMD)"}, ""},
		{"undetectable on a base with its own command", []string{"--context", empty, "--base", "scratch"}, exitUnreachable,
			[]string{"no app kind detected: the image runs the base's own command base=scratch", "packed app layer", unreachable}, ""},
		// A PHP app with nothing to serve is an error even on a base of
		// the user's: the base's own command (php -a) would not serve it.
		{"a kind with nothing to run, on a base", []string{"--context", phpNothing, "--base", "scratch"}, exitUsage,
			[]string{"php app (composer.json): nothing detected to run: neither public/index.php nor index.php to serve"}, "packed app layer"},
		{"node example", []string{"--context", filepath.Join("..", "..", "examples", "node"), "--base", "scratch"}, exitUnreachable,
			[]string{`detected app kind=node cmd=["node","server.js"] base=scratch why=package.json: start script "node server.js", run without npm`}, ""},
		{"given command: no detection", []string{"--context", empty, "--cmd", "/app/server"}, exitUnreachable,
			[]string{"packed app layer", unreachable}, "detected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"shipper", "package", "--image", unreachable, "--sha", "7c77eb36"}, tc.args...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tc.code || stdout.Len() > 0 {
				t.Errorf("exit %d, stdout %q; want exit %d and no stdout (stderr: %s)", code, stdout.String(), tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if tc.not != "" && strings.Contains(stderr.String(), tc.not) {
				t.Errorf("stderr has %q:\n%s", tc.not, stderr.String())
			}
		})
	}
}

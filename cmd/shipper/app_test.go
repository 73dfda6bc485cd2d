package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/release"
)

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // prefix
		wantStderr string // substring
	}{
		{"version", []string{"version"}, exitOK, "shipper dev (commit unknown, go", ""},
		{"version with an argument", []string{"version", "extra"}, exitUsage, "", `shipper: version takes no arguments, got "extra"`},
		{"unknown flag", []string{"version", "--nope"}, exitUsage, "", "shipper: flag provided but not defined: -nope"},
		{"unknown command", []string{"bogus"}, exitUsage, "", `shipper: unknown command "bogus": run 'shipper --help' for the list`},
		{"no command shows help", nil, exitOK, "NAME:\n   shipper - preview deployments", ""},
		{"unknown global flag", []string{"--nope"}, exitUsage, "", "shipper: flag provided but not defined: -nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"shipper"}, tc.args...), &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr: %q)", code, tc.wantCode, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q, want prefix %q", stdout.String(), tc.wantStdout)
			}
			if tc.wantStderr != "" && !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
			if tc.wantCode == exitOK && stderr.Len() > 0 {
				t.Errorf("stderr %q on success, want nothing", stderr.String())
			}
		})
	}
}

func TestRolloutErrorPrintsLogLines(t *testing.T) {
	var stderr bytes.Buffer
	err := fmt.Errorf("deploying myapp-7c77eb36: %w", &release.RolloutError{
		Release: "myapp-7c77eb36", Pod: "myapp-7c77eb36-5d9c7-x2x9q", Reason: "CrashLoopBackOff",
		Message: "back-off 40s restarting failed container", Logs: []string{"panic: no config", "exit status 2"},
	})
	if code := report(err, &stderr); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	want := "shipper: deploying myapp-7c77eb36: release myapp-7c77eb36 not available: pod myapp-7c77eb36-5d9c7-x2x9q: CrashLoopBackOff: back-off 40s restarting failed container\n" +
		"hint: last log lines of pod myapp-7c77eb36-5d9c7-x2x9q:\n  panic: no config\n  exit status 2\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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

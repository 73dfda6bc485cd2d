package main

import (
	"strings"
	"testing"
)

const testGateKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

// TestGateChecksItsInputs: a bad flag or secret of `shipper gate` is exit 2
// naming it, and never echoes a secret.
func TestGateChecksItsInputs(t *testing.T) {
	clearFlagEnv(t)
	t.Setenv(gateKeyVar, testGateKey)
	base := []string{"gate", "--app", "myapp", "--sha", "7c77eb36", "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no key", map[string]string{gateKeyVar: ""}, nil, gateKeyVar},
		{"a short key", map[string]string{gateKeyVar: "c2hvcnQta2V5LXNlY3JldA=="}, nil, gateKeyVar},
		{"a key that is not base64", map[string]string{gateKeyVar: "not base64 secret-value!"}, nil, gateKeyVar},
		{"a bad upstream", nil, []string{"--upstream", "ftp://127.0.0.1:1"}, "--upstream"},
		{"a bad listen address", nil, []string{"--listen", "8080"}, "--listen"},
		{"a bad scheme", nil, []string{"--url-scheme", "gopher"}, "--url-scheme"},
		{"a login host without a domain", nil, []string{"--login-host", "myapp.example.com"}, "--domain"},
		{"no commit", nil, []string{"--sha", ""}, "--sha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "secret") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming %s, no secret", code, stdout, stderr, tc.want)
			}
		})
	}
}

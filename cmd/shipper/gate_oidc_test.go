package main

import (
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/gate"
)

// TestGateChecksItsOIDCInputs: the sign-in with a provider needs its
// issuer, client, secret and an explicit choice of who gets in; a bad one
// is exit 2 naming the flag or variable, never echoing the secret.
func TestGateChecksItsOIDCInputs(t *testing.T) {
	clearFlagEnv(t)
	t.Setenv(gateKeyVar, testGateKey)
	t.Setenv(gate.OIDCSecretVar, "oidc-secret-value")
	base := []string{"gate", "--app", "myapp", "--sha", "7c77eb36", "--listen", "127.0.0.1:0"}
	issuer := []string{"--oidc-issuer", "https://gitlab.example.com", "--oidc-client-id", "app-id"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"an http issuer", nil, []string{"--oidc-issuer", "http://gitlab.example.com", "--oidc-client-id", "x", "--oidc-groups", "acme"}, "--oidc-issuer must be"},
		{"an issuer with a query", nil, []string{"--oidc-issuer", "https://gitlab.example.com/?a=b", "--oidc-client-id", "x", "--oidc-groups", "acme"}, "--oidc-issuer must be"},
		{"no client ID", nil, []string{"--oidc-issuer", "https://gitlab.example.com", "--oidc-groups", "acme"}, "--oidc-client-id"},
		{"no secret", map[string]string{gate.OIDCSecretVar: ""}, append(issuer, "--oidc-groups", "acme"), gate.OIDCSecretVar},
		{"nobody chosen", nil, issuer, "--oidc-groups"},
		{"groups and anyone", nil, append(issuer, "--oidc-groups", "acme", "--oidc-allow-any-user"), "exclude each other"},
		{"a bad group", nil, append(issuer, "--oidc-groups", "acme/,qa"), "--oidc-groups must be"},
		{"an empty group", nil, append(issuer, "--oidc-groups", "acme,,qa"), "--oidc-groups must be"},
		{"groups without an issuer", nil, []string{"--oidc-groups", "acme"}, "--oidc-groups needs --oidc-issuer"},
		{"a name with a line break", nil, append(issuer, "--oidc-groups", "acme", "--oidc-name", "Git\nLab"), "--oidc-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "secret-value") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, one line naming %s, no secret", code, stdout, stderr, tc.want)
			}
		})
	}
}

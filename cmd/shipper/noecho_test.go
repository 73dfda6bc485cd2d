package main

import (
	"strings"
	"testing"
)

// TestRefusalsDoNotEchoValues: a bad --env pair or a value the chart's
// schema refuses is exit 2 naming the flag or the key and the rule; the
// value, which may be a secret, is never printed.
func TestRefusalsDoNotEchoValues(t *testing.T) {
	clearFlagEnv(t)
	render := []string{"render", "--app", "x", "--domain", "example.com", "--sha", "12345678", "--image", "r.example.com/x:1"}
	for _, tc := range []struct {
		name   string
		args   []string
		secret string // never in the output
		want   string // in stderr
	}{
		{"--env without =", []string{"--env", "LOG_LEVEL=debug", "--env", "NOEQUALS-s3cr3t"}, "s3cr3t", "--env #2"},
		{"--env whose name is a value", []string{"--env", "postgres://app:s3cr3t@db/app?sslmode=require"}, "s3cr3t", "--env #1"},
		{"--set refused by the schema", []string{"--set", "ingress.tls.secretName=s3cr3t-VALUE"}, "s3cr3t", "ingress.tls.secretName: must match"},
		{"--set of a line break", []string{"--set", "env.DB_PASSWORD=s3cr3t\nX=1"}, "s3cr3t", "env.DB_PASSWORD: must match"},
		{"--database-url that does not parse", []string{"--database-url", "postgres://admin:s3cr3t@db:bad/postgres", "--database-template", "tpl"}, "s3cr3t", "--database-url"},
		{"--database-url of another engine", []string{"--database-url", "mysql://admin:s3cr3t@db/app", "--database-template", "tpl"}, "s3cr3t", "--database-url"},
		{"--database-url without a template", []string{"--database-url", "postgres://admin:s3cr3t@db/postgres"}, "s3cr3t", "--database-template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(render, tc.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, tc.secret) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming %q, without the value", code, stdout, stderr, tc.want)
			}
		})
	}
}

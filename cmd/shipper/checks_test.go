package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// badFlags are values every command that takes the flag refuses, offline.
var badFlags = []struct {
	flag, value string
	want        string // in the one line of stderr
}{
	{"url-scheme", "http\nX=1", "--url-scheme"},
	{"domain", "bad_domain!", "domain"},
	{"host", "Bad Host!", "host"},
	{"timeout", "0s", "--timeout"},
	{"drain-delay", "-1s", "--drain-delay"},
	{"verify", "true", "--verify"}, // on the ingress router
	{"verify-address", "no-port", "--verify-address"},
	{"commit-time", "yesterday", "--commit-time"},
	{"env", "NOVALUE", "--env"},
	{"weight", "101", "--weight"},
	{"output", "yaml", "--output"},
	{"dotenv", "/nonexistent/dir/deploy.env", "--dotenv"},
	{"digest-file", "/nonexistent/dir/image.ref", "--digest-file"},
	{"parallel", "0", "--parallel"},
	{"keep", "-1", "--keep"},
	{"to", "not-a-sha", "--to"},
	{"sha", "zzzzzzzz", "commit SHA"},
	{"image", "Bad//Repo:1", "image"},
	{"repository", "Bad//Repo", "image"},
	{"tag", "bad tag", "--tag"},
	{"ref", "-", "--ref"},
	{"router", "bogus", "--router"},
	{"project-id", "abc", "project ID"},
	{"set", "a[=1", "--set"},
	{"values", "/nonexistent/values.yaml", "values file"},
	{"chart", "/nonexistent/chart", "chart"},
	{"ingress-class", "Bad_Class", "--ingress-class"},
	{"alias-host", "{app}-{ref}.Bad Alias!", "alias host"},
	{"max-age", "-1h", "--max-age"},
	{"branch-exists-file", "/nonexistent/branches.txt", "--branch-exists-file"},
	{"gateway", "gateway-system/shared", "--gateway"}, // on the ingress router
	{"lock-lease", "0s", "--lock-lease"},
	{"kube-url", "not a url", "--kube-url"},
	{"kube-ca", "not PEM", "--kube-ca"},
	{"kube-ca-file", "/nonexistent/ca.pem", "--kube-ca-file"},
	{"database-url", "postgres://admin:s3cr3t@db:bad-port/postgres", "--database-url"},
	{"database-template", strings.Repeat("t", 64), "--database-template"},
	{"database-host", "db:70000", "--database-host"},
	{"database-strategy", "FILE_COPY", "--database-strategy"},
	// package's own
	{"context", "/nonexistent/app", "build context"},
	{"workdir", "relative", "workdir"},
	{"entrypoint", "[broken", "--entrypoint"},
	{"port", "70000", "port"},
	{"compression", "lz4", "compression"},
	{"platform", "linux", "platform"},
	{"platform-context", "linux/arm64", "--platform-context"},
	{"base", "Bad Base", "base"},
}

// offlineOnly are flags a command takes only so that one command line or
// job's variables serve it and its siblings: it needs no cluster, so it
// reads none of them.
var offlineOnly = map[string][]string{
	"render": {"kube-url", "kube-ca", "kube-ca-file"},
}

// errorLines are stderr's lines but the progress log's ("[  0.0s] ...":
// package packs the app's layer, offline, before it reads --platform and
// --base).
func errorLines(stderr string) int {
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "[") {
			n++
		}
	}
	return n
}

// TestEveryFlagIsCheckedBeforeTheFirstRequest runs each command with
// everything it reaches unreachable (apiserver, registry, base image):
// with good flags it exits 3 (render, which reaches nothing, 0), so a bad
// value of any flag it takes must be refused offline, with exit 2, one
// line naming the flag, and never the value.
func TestEveryFlagIsCheckedBeforeTheFirstRequest(t *testing.T) {
	clearFlagEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{
		"app": "a", "sha": "12345678", "domain": "example.com", "image": "127.0.0.1:1/a:1", "ref": "main",
		"kube-url": "https://127.0.0.1:1", "timeout": "1s", "keep": "1",
		"context": dir, "entrypoint": "/app/server", "base": "127.0.0.1:1/base:1",
	}
	for _, c := range newApp(nil, nil).Commands {
		takes := func(flag string) bool {
			return slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), flag) })
		}
		args := func(over, value string) []string {
			out := []string{c.Name}
			for _, f := range []string{"app", "sha", "domain", "image", "ref", "kube-url", "timeout", "keep", "context", "entrypoint", "base"} {
				// --image wins over --repository: left out to try the latter.
				if takes(f) && f != over && !(f == "image" && over == "repository") {
					out = append(out, "--"+f, good[f])
				}
			}
			if over != "" {
				out = append(out, "--"+over+"="+value)
			}
			return out
		}
		// gate serves until stopped, and reaches nothing before it has
		// checked its flags: TestGateChecksItsInputs.
		if len(c.Flags) == 0 || c.Name == "version" || c.Name == "gate" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			want := exitUnreachable
			if c.Name == "render" {
				want = exitOK
			}
			if code, _, stderr := runCLI(t, args("", "")...); code != want {
				t.Fatalf("with good flags: exit %d, want %d: %s", code, want, stderr)
			}
			for _, tc := range badFlags {
				if !takes(tc.flag) || slices.Contains(offlineOnly[c.Name], tc.flag) {
					continue
				}
				t.Run(tc.flag, func(t *testing.T) {
					code, stdout, stderr := runCLI(t, args(tc.flag, tc.value)...)
					if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) ||
						errorLines(stderr) != 1 || strings.Contains(stderr, "X=1") {
						t.Errorf("--%s=%q: exit %d, stdout %q, stderr %q; want exit 2, one line naming %q, the value not shown",
							tc.flag, tc.value, code, stdout, stderr, tc.want)
					}
				})
			}
		})
	}
}

// TestDeployChecksURLSchemeBeforeTheRegistry is the case: a bad
// --url-scheme with an image the registry cannot give is the flag's
// exit 2, not the registry's 3.
func TestDeployChecksURLSchemeBeforeTheRegistry(t *testing.T) {
	clearFlagEnv(t)
	code, stdout, stderr := runCLI(t, "deploy", "--app", "a", "--sha", "12345678", "--domain", "example.com",
		"--image", "127.0.0.1:1/a:1", "--kube-url", "https://127.0.0.1:1", "--url-scheme", "http\nX=1")
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--url-scheme") || strings.Contains(stderr, "X=1") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 naming --url-scheme, without the value", code, stdout, stderr)
	}
}

package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipper-dev/shipper/internal/release"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n%s", path, got)
	}
}

// TestHelpGolden pins every command's --help: the flag names and their
// environment variables are the contract with .gitlab-ci.yml files.
func TestHelpGolden(t *testing.T) {
	cmds := []string{""}
	for _, c := range newApp(nil, nil).Commands {
		cmds = append(cmds, c.Name)
	}
	for _, name := range cmds {
		t.Run("help-"+name, func(t *testing.T) {
			args := []string{"shipper", "--help"}
			if name != "" {
				args = []string{"shipper", name, "--help"}
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if name == "" {
				name = "shipper"
			}
			golden(t, filepath.Join("help", name+".txt"), stdout.Bytes())
		})
	}
}

func TestListTableGolden(t *testing.T) {
	now := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	commits := []release.Commit{
		{Short: "7c77eb36", Status: "deployed", Updated: now.Add(-5 * time.Minute), URL: "https://myapp-7c77eb36.example.com", Live: true, Aliases: []string{"main"}, Protect: "previews"},
		{Short: "3f9a1c2e", Status: "failed", Updated: now.Add(-3 * time.Hour), URL: "https://myapp-3f9a1c2e.example.com"},
		{Short: "5e6f7a8b", Status: "deployed", Updated: now.Add(-4 * time.Hour), URL: "https://myapp-5e6f7a8b.example.com", Aliases: []string{"feature-login", "release-2"}},
		{Short: "0b1c2d3e", Status: "deployed", Updated: now.Add(-50 * time.Hour), URL: "https://myapp-0b1c2d3e.example.com"},
	}
	golden(t, "list.txt", []byte(table(commits, now, false)))
	// During a canary: the live commit's share and the canary's.
	commits[0].Weight = 90
	commits = append(commits, release.Commit{Short: "9d8e7f6a", Status: "deployed", Updated: now.Add(-time.Minute),
		URL: "https://myapp-9d8e7f6a.example.com", Canary: true, Weight: 10})
	golden(t, "list-canary.txt", []byte(table(commits, now, false)))
	// --all-apps: the app first.
	apps := []release.Commit{commits[0], commits[1], {App: "shop", Short: "a1b2c3d4", Status: "deployed",
		Updated: now.Add(-2 * time.Hour), URL: "https://shop-a1b2c3d4.example.com", Live: true, Weight: 100}}
	apps[0].App, apps[1].App = "myapp", "myapp"
	golden(t, "list-all-apps.txt", []byte(table(apps, now, true)))
}

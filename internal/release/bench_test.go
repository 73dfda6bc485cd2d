package release_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// benchSHA returns a distinct 40-hex SHA for iteration i.
func benchSHA(i int) string { return fmt.Sprintf("%08x", i+1) + strings.Repeat("0", 32) }

// deployNoWait deploys sha of app without waiting for pods (none run in
// this harness).
func deployNoWait(b testing.TB, cfg *release.Configuration, app, sha, image string) {
	b.Helper()
	d := release.NewDeploy(cfg)
	d.Hosts, d.Wait = release.Hosts{Domain: "example.com"}, false
	if _, err := d.Run(context.Background(), names(b, app, sha), image); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDeployNewCommit deploys a new commit per iteration as one CI
// job would: a fresh Configuration (so discovery is paid each time), no
// wait (no pods run in this harness).
func BenchmarkDeployNewCommit(b *testing.B) {
	env := testenv.Get(b)
	app := uniqueApp("bench")
	image := env.Registry.Repository("bench/app") + ":v1"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, err := release.NewConfiguration(env.AdminConfig())
		if err != nil {
			b.Fatal(err)
		}
		deployNoWait(b, cfg, app, benchSHA(i), image)
	}
}

// BenchmarkHelmCLIUpgradeInstall is the baseline: the helm CLI installing
// the same chart with the same values into a new namespace, as a
// hand-written pipeline would.
func BenchmarkHelmCLIUpgradeInstall(b *testing.B) {
	env := testenv.Get(b)
	helmBin, err := testenv.Binary("helm")
	if err != nil {
		b.Fatal(err)
	}
	app := uniqueApp("helmcli")
	home := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rel := app + "-" + benchSHA(i)[:8]
		cmd := exec.Command(helmBin, "upgrade", "--install", rel, "../../charts/preview-app",
			"--namespace", rel, "--create-namespace", "--kubeconfig", env.Kubeconfig,
			"--set", "app="+app, "--set", "sha="+benchSHA(i), "--set", "shortSha="+benchSHA(i)[:8],
			"--set", "image.repository="+env.Registry.Repository("bench/app"), "--set", "image.tag=v1",
			"--set", "ingress.host="+rel+".example.com")
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}

// BenchmarkPromote switches production between two deployed commits, with
// a fresh Configuration each time as a CI job has.
func BenchmarkPromote(b *testing.B) {
	env := testenv.Get(b)
	app := uniqueApp("benchp")
	cfg, err := release.NewConfiguration(env.AdminConfig())
	if err != nil {
		b.Fatal(err)
	}
	shas := []string{benchSHA(0), benchSHA(1)}
	for _, sha := range shas {
		deployNoWait(b, cfg, app, sha, env.Registry.Repository("bench/app")+":v1")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, err := release.NewConfiguration(env.AdminConfig())
		if err != nil {
			b.Fatal(err)
		}
		p := release.NewPromote(cfg)
		p.Hosts = release.Hosts{Domain: "example.com"}
		if _, err := p.Run(context.Background(), names(b, app, shas[i%2])); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList compares shipper's List with Helm's own list of every
// namespace over 300 releases (each a deployed commit of one app).
func BenchmarkList(b *testing.B) {
	env := testenv.Get(b)
	app := uniqueApp("benchl")
	cfg, err := release.NewConfiguration(env.AdminConfig())
	if err != nil {
		b.Fatal(err)
	}
	const releases = 300
	for i := 0; i < releases; i++ {
		deployNoWait(b, cfg, app, benchSHA(i), env.Registry.Repository("bench/app")+":v1")
	}
	b.Run("shipper", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			got, err := release.NewList(cfg).Run(context.Background(), names(b, app, ""))
			if err != nil {
				b.Fatal(err)
			}
			if len(got) != releases {
				b.Fatalf("listed %d commits, want %d", len(got), releases)
			}
		}
	})
	b.Run("helm-sdk-all-namespaces", func(b *testing.B) {
		var hc action.Configuration
		if err := hc.Init(restGetterFor(env), "", "secret", func(string, ...any) {}); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			l := action.NewList(&hc)
			l.AllNamespaces = true
			got, err := l.Run()
			if err != nil {
				b.Fatal(err)
			}
			if len(got) < releases {
				b.Fatalf("helm listed %d releases, want at least %d", len(got), releases)
			}
		}
	})
}

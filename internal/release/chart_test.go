package release_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestLoadChartSources loads the chart from each kind of source a user can
// give: embedded, a directory, a .tgz, and an oci:// reference pushed to
// the real registry with basic auth.
func TestLoadChartSources(t *testing.T) {
	env := testenv.Get(t)
	embedded, err := release.LoadChart(release.ChartSource{})
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := chartutil.Save(embedded, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	reg := env.Registry
	rc, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptBasicAuth(reg.Username, reg.Password))
	if err != nil {
		t.Fatal(err)
	}
	ociRef := reg.Host + "/charts/preview-app:" + embedded.Metadata.Version
	if _, err := rc.Push(data, ociRef); err != nil {
		t.Fatalf("pushing the chart to the test registry: %v", err)
	}

	for _, tc := range []struct {
		name string
		src  release.ChartSource
	}{
		{"directory", release.ChartSource{Ref: "../../charts/preview-app"}},
		{"tgz", release.ChartSource{Ref: tgz}},
		{"oci", release.ChartSource{Ref: "oci://" + ociRef, PlainHTTP: true, Username: reg.Username, Password: reg.Password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := release.LoadChart(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name() != "preview-app" || len(c.Templates) != len(embedded.Templates) || c.Schema == nil {
				t.Errorf("loaded %s with %d templates (schema %v), want preview-app with %d and its schema",
					c.Name(), len(c.Templates), c.Schema != nil, len(embedded.Templates))
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "nope")
	const badPassword = "not-the-password-4711"
	for _, tc := range []struct {
		name, want string
		usage      bool
		src        release.ChartSource
	}{
		{"missing path", `invalid chart "` + missing + `"`, true, release.ChartSource{Ref: missing}},
		{"wrong password", "pulling chart oci://" + ociRef, false, release.ChartSource{Ref: "oci://" + ociRef, PlainHTTP: true, Username: reg.Username, Password: badPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := release.LoadChart(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) || release.IsUsage(err) != tc.usage {
				t.Fatalf("err = %v, want one containing %q (usage error: %v)", err, tc.want, tc.usage)
			}
			if strings.Contains(err.Error(), badPassword) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

package release

import (
	"fmt"
	"io/fs"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"

	"github.com/shipper-dev/shipper/charts"
)

// ChartSource says where the chart comes from: "" for the chart embedded in
// the binary, a directory or .tgz path, or an "oci://" reference.
type ChartSource struct {
	Ref string
	// PlainHTTP lets an oci:// reference use a registry without TLS.
	PlainHTTP bool
	// Username and Password authenticate to an oci:// registry.
	Username, Password string
}

// LoadChart loads the chart once; operations reuse the result instead of
// parsing templates again.
func LoadChart(src ChartSource) (*chart.Chart, error) {
	switch {
	case src.Ref == "":
		return loadFS(charts.PreviewApp())
	case strings.HasPrefix(src.Ref, "oci://"):
		return loadOCI(src)
	default:
		c, err := loader.Load(src.Ref)
		if err != nil {
			return nil, &UsageError{Input: "chart", Value: src.Ref, Rule: "must be a chart directory, a .tgz or an oci:// reference: " + err.Error()}
		}
		return c, nil
	}
}

func loadFS(fsys fs.FS) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		files = append(files, &loader.BufferedFile{Name: path, Data: data})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the embedded chart: %w", err)
	}
	return loader.LoadFiles(files)
}

func loadOCI(src ChartSource) (*chart.Chart, error) {
	opts := []registry.ClientOption{registry.ClientOptEnableCache(false)}
	if src.PlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	if src.Username != "" {
		opts = append(opts, registry.ClientOptBasicAuth(src.Username, src.Password))
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	res, err := rc.Pull(strings.TrimPrefix(src.Ref, "oci://"))
	if err != nil {
		return nil, fmt.Errorf("pulling chart %s: %w", src.Ref, err)
	}
	return loader.LoadArchive(strings.NewReader(string(res.Chart.Data)))
}

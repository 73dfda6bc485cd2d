package charts

import (
	"io/fs"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
)

// TestPreviewAppLoads checks that the embedded chart is a chart Helm's own
// loader accepts, under the name and API version the release engine uses.
func TestPreviewAppLoads(t *testing.T) {
	var bufs []*loader.BufferedFile
	err := fs.WalkDir(PreviewApp(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(PreviewApp(), path)
		bufs = append(bufs, &loader.BufferedFile{Name: path, Data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loader.LoadFiles(bufs)
	if err != nil {
		t.Fatalf("loading the embedded chart: %v", err)
	}
	if got, want := c.Name(), "preview-app"; got != want {
		t.Errorf("chart name = %q, want %q", got, want)
	}
	if got, want := c.Metadata.APIVersion, "v2"; got != want {
		t.Errorf("chart apiVersion = %q, want %q", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("chart metadata invalid: %v", err)
	}
}

package release_test

import (
	"log/slog"
	"testing"

	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) {
	// client-go's leader election logs through klog; keep test output
	// readable. A logger, as klog copies errors to stderr otherwise.
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	testenv.Main(m)
}

// names is release.NewNames for inputs a test knows to be valid; sha may
// be "" for the app alone.
func names(tb testing.TB, app, sha string) release.Names {
	tb.Helper()
	n, err := release.NewNames(app, sha)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

package release_test

import (
	"io"
	"testing"

	"k8s.io/klog/v2"

	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) {
	// client-go's leader election logs through klog; keep test output readable.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	testenv.Main(m)
}

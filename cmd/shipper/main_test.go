package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, func() {
		if built.path != "" {
			os.RemoveAll(filepath.Dir(built.path))
		}
	})
}

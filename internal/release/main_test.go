package release_test

import (
	"testing"

	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

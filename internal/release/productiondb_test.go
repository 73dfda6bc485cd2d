package release

import (
	"context"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/database"
)

// TestRollbackRefusesProductionOnAPreviewDatabase: with per-commit
// databases, rollback without production's DATABASE_URL is bad input
// before anything is read (the configuration here reaches no cluster), as
// promote's is (TestPromoteRefusesProductionOnAPreviewDatabase).
func TestRollbackRefusesProductionOnAPreviewDatabase(t *testing.T) {
	// Open connects to nothing: the engine only says databases are on.
	engine, err := database.Open(database.Config{URL: "postgres://admin:pw@127.0.0.1:1/postgres", Template: "tpl"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNames("myapp", "")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRollback(offline(t, WithDatabase(engine)))
	_, err = r.Run(context.Background(), n, "")
	if !IsUsage(err) || !strings.Contains(err.Error(), "K8S_SECRET_DATABASE_URL") || strings.Contains(err.Error(), "\n") {
		t.Errorf("rollback without production's DATABASE_URL: %v, want one line naming K8S_SECRET_DATABASE_URL", err)
	}
	r.Secrets = map[string]string{"DATABASE_URL": "postgres://prod"}
	if _, err := r.Run(context.Background(), n, ""); IsUsage(err) && strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("with it: %v", err)
	}
}

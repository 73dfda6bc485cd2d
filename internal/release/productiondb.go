package release

import (
	"cmp"
	"context"
	"fmt"
)

// Production's database. A commit serves production with its own pods,
// which take production's Secret (the promote or rollback job's
// K8S_SECRET_* variables: sizing.go) instead of the preview's only when
// that job has production's secret variables. Without a DATABASE_URL
// among them, pods of a commit with a database of its own would serve
// production from that preview database. Promote and rollback refuse
// that, exit 2 before anything changes:
//
//	settings  with per-commit databases (WithDatabase), before anything is
//	          read: every commit then has a preview database.
//	cluster   whatever the job's settings (a rollback run by hand without
//	          them), once the target is known and before the switch: the
//	          commit's env Secret holds its own database (PGDATABASE is the
//	          commit's release, as deploy names it).

// productionDatabaseVar is the variable production's database comes
// from, among production's secret variables.
const productionDatabaseVar = "DATABASE_URL"

// requireProductionDatabase is the settings' check: with per-commit
// databases, production's secret variables must hold a DATABASE_URL.
func (c *Configuration) requireProductionDatabase(secrets map[string]string, prefix string) error {
	if c.db == nil || secrets[productionDatabaseVar] != "" {
		return nil
	}
	return noProductionDatabase(prefix, "with per-commit databases (--database-url) production needs a database of its own, else it would run on the commit's preview database")
}

// checkCommitDatabase is the cluster's check for each commit production is
// about to route to: none may run production on a preview database of its
// own. The caller holds production's lock and the commits'. sent are the
// reads of commits' env Secrets sent early under those locks, by release
// (a rollback's, with its fresh read of the history); nil: none.
func (c *Configuration) checkCommitDatabase(ctx context.Context, secrets map[string]string, prefix string, sent envReads, commits ...Names) error {
	if secrets[productionDatabaseVar] != "" {
		return nil
	}
	for _, n := range commits {
		env, err := sent[n.Release].get(func() (map[string]string, error) { return c.envSecretData(ctx, n) })
		if err != nil {
			return err
		}
		if env[productionDatabaseVar] != "" && env["PGDATABASE"] == n.Release {
			return noProductionDatabase(prefix, fmt.Sprintf("commit %s has a database of its own (deploy --database-url), and production would run on it", n.Short))
		}
	}
	return nil
}

// envReads are reads of commits' env Secrets (envSecretData) sent early,
// by release.
type envReads map[string]*early[map[string]string]

// noProductionDatabase is the refusal of both checks: why, and the fix.
func noProductionDatabase(prefix, why string) error {
	prefix = cmp.Or(prefix, "K8S_SECRET_")
	return &UsageError{Input: "secret variable", Value: prefix + productionDatabaseVar, Rule: "is not set for production: " + why + "; " +
		"set " + prefix + productionDatabaseVar + " (masked, protected, scoped to the production environment) to production's database"}
}

package release

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/database"
)

// Per-commit databases (WithDatabase; internal/database does the SQL):
//
//	deploy   under the commit's Lease, before Helm: Ensure the commit's
//	         database (a copy of the template, or the one it has, its data
//	         kept) with the password its Secret holds, then write the
//	         variables it returns into the commit's "-env" Secret beside
//	         its K8S_SECRET_* ones (envsecret.go): the pods take them with
//	         envFrom; Helm's values get only the Secret's name and version.
//	delete   (and prune, through Delete's path) under the commit's Lease,
//	         before Helm's uninstall: Drop the database and its role,
//	         sessions ended. A database that is not shipper's for the app
//	         and project is left alone, with a warning.
//	prune    a database whose commit has no namespace (its delete ran
//	         without the database settings, or someone removed the
//	         namespace) is planned as "database" and dropped after the
//	         commits, once a fresh read shows the namespace still absent.
//	status   such a database, and a commit whose database is missing,
//	         are problems with their repair.
//
// The engine never sees Kubernetes and the release code never sees SQL:
// another engine is a new database.Engine, nothing here changes.
// Production is not given a database: a promoted commit's pods run with
// production's own Secret (promote's K8S_SECRET_DATABASE_URL, which
// promote requires with the database settings: migrate.go's checkMigrate),
// the preview's database stays the preview's.

// WithDatabase gives every commit a database of its own on db.
func WithDatabase(db database.Engine) Option { return func(c *Configuration) { c.db = db } }

// databaseOf is commit n's database.
func (c *Configuration) databaseOf(n Names) database.Commit {
	return database.Commit{Name: n.Release, App: n.AppPart, SHA: n.Short, Project: c.project.ID}
}

// checkEnv checks d's secret environment before anything changes and
// reports whether the commit has an env Secret: its K8S_SECRET_*
// variables, or its database's. A secret variable with the name of one
// shipper sets for the database is refused: one of the two would lose.
func (d *Deploy) checkEnv() (bool, error) {
	if err := CheckSecretNames(d.Secrets, d.SecretPrefix); err != nil {
		return false, err
	}
	if d.cfg.db == nil {
		return len(d.Secrets) > 0, nil
	}
	for _, v := range d.cfg.db.Vars() {
		if _, ok := d.Secrets[v]; ok {
			return false, &UsageError{Input: "secret variable", Value: d.SecretPrefix + v, Rule: "is set by shipper for the commit's database (--database-url): remove the variable, or the database settings"}
		}
	}
	return true, nil
}

// applyEnv writes commit n's env Secret, with its database's variables
// when it has one, made or found first; it returns the Secret's version.
// The caller holds the commit's Lease.
func (d *Deploy) applyEnv(ctx context.Context, n Names) (string, error) {
	if d.cfg.db == nil {
		return d.cfg.applyEnvSecret(ctx, n, d.Secrets)
	}
	previous, err := d.cfg.envSecretData(ctx, n)
	if err != nil {
		return "", err
	}
	vars, err := d.cfg.db.Ensure(ctx, d.cfg.databaseOf(n), previous)
	if err != nil {
		// Not bad input, even for a name that is not shipper's: the
		// namespace is made by now.
		return "", fmt.Errorf("the commit's database: %s", err.Error())
	}
	d.cfg.log.Info("database ready", "database", n.Release)
	env := maps.Clone(d.Secrets)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, vars)
	return d.cfg.applyEnvSecret(ctx, n, env)
}

// envSecretData is what commit n's env Secret holds (nil when none).
func (c *Configuration) envSecretData(ctx context.Context, n Names) (map[string]string, error) {
	s, err := c.client.CoreV1().Secrets(n.Namespace).Get(ctx, envSecretName(n), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", n.Namespace, envSecretName(n), err)
	}
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out, nil
}

// dropDatabase drops commit n's database and role, if it has them. The
// caller holds the commit's Lease.
func (c *Configuration) dropDatabase(ctx context.Context, n Names) error {
	if c.db == nil {
		return nil
	}
	dropped, err := c.db.Drop(ctx, c.databaseOf(n))
	var notOurs *database.NotOursError
	switch {
	case errors.As(err, &notOurs):
		c.log.Warn("left a database that is not shipper's alone", "database", n.Release, "why", notOurs.Owner)
	case err != nil:
		return fmt.Errorf("dropping the database of %s: %w", n.Release, err)
	case dropped:
		c.log.Info("dropped the database", "database", n.Release)
	}
	return nil
}

// withDatabases adds to prune's plan items the databases of the app whose
// commit has no namespace, or one being deleted (a "database" item each,
// to delete).
func (p *Prune) withDatabases(ctx context.Context, n Names, items []PruneItem) ([]PruneItem, error) {
	if p.cfg.db == nil {
		return items, nil
	}
	found, err := p.cfg.db.List(ctx, n.AppPart, p.cfg.project.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the app's databases: %w", err)
	}
	nss, err := p.cfg.previewNamespaces(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if !hasCommit(nss, f.Name) {
			items = append(items, PruneItem{Kind: "database", Short: f.SHA, Release: f.Name, Action: "delete",
				Reason: "its commit has no namespace (a delete without the database settings, or a killed job)"})
		}
	}
	return items, nil
}

// hasCommit reports whether nss hold namespace name, not being deleted.
func hasCommit(nss []corev1.Namespace, name string) bool {
	return slices.ContainsFunc(nss, func(ns corev1.Namespace) bool { return ns.Name == name && ns.DeletionTimestamp == nil })
}

// dropDatabases drops the databases prune planned, each once a fresh read
// shows its commit still has no namespace (a deploy since keeps it).
func (p *Prune) dropDatabases(ctx context.Context, n Names, out *Pruned) {
	for i := range out.Items {
		it := &out.Items[i]
		if it.Kind != "database" || it.Action != "delete" {
			continue
		}
		c, err := n.WithSHA(it.Short)
		if err == nil {
			var ns *corev1.Namespace
			ns, err = p.cfg.client.CoreV1().Namespaces().Get(ctx, c.Namespace, metav1.GetOptions{})
			switch {
			case err == nil && ns.DeletionTimestamp == nil:
				err = errChanged
			case err == nil, apierrors.IsNotFound(err):
				err = p.cfg.dropDatabase(ctx, c)
			}
		}
		p.record(out, it, err)
	}
}

// databaseViolations are the database problems of n's app: a database
// whose commit has no namespace, and a commit whose database is missing.
func (c *Configuration) databaseViolations(ctx context.Context, n Names) ([]Violation, error) {
	if c.db == nil {
		return nil, nil
	}
	found, err := c.db.List(ctx, n.AppPart, c.project.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the app's databases: %w", err)
	}
	nss, err := c.previewNamespaces(ctx, n)
	if err != nil {
		return nil, err
	}
	var out []Violation
	for _, f := range found {
		switch {
		case !hasCommit(nss, f.Name):
			out = append(out, Violation{"every database belongs to a commit",
				fmt.Sprintf("database %s is left without its commit", f.Name),
				"shipper prune (drops it), or shipper deploy --sha " + f.SHA + " (deploys the commit on it again)"})
		case !f.Database:
			out = append(out, Violation{"every commit's database exists",
				fmt.Sprintf("commit %s has its database role but no database (a deploy was killed)", f.SHA),
				"shipper deploy --sha " + f.SHA})
		}
	}
	return out, nil
}

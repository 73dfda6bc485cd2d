package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/kube"
	"github.com/shipper-dev/shipper/internal/release"
)

// namesFunc reads the names a command works on from its flags: appNames or
// commitNames.
type namesFunc func(*cli.Context) (release.Names, error)

// clusterAction is the Action of a command that works on the cluster
// (its flags checked by checkFlags): it reads the names, connects, checks
// what needs the Configuration, sets --timeout as the context's deadline,
// and runs fn, which checks the rest of its input before its first
// request.
func clusterAction(names namesFunc, fn func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		n, err := names(c)
		if err != nil {
			return err
		}
		cfg, err := configuration(c, true)
		if err != nil {
			return err
		}
		if err := checkConfiguration(c, cfg); err != nil {
			return err
		}
		ctx, cancel := withTimeout(c)
		defer cancel()
		if r, ok := c.App.Metadata["requests"].(*kube.Requests); ok {
			defer func() { logger(c).Debug("done", "api-requests", r.Count()) }()
		}
		return fn(ctx, c, cfg, n)
	}
}

// withTimeout is the command's context with --timeout as its deadline:
// the only place it is applied.
func withTimeout(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, c.Duration("timeout"))
}

// databaseEngine is the per-commit database engine of --database-url, nil
// without one. A template without a URL is what a protected
// SHIPPER_DATABASE_URL gives a job on an unprotected branch: said, not
// refused.
func databaseEngine(c *cli.Context) (database.Engine, error) {
	if c.String("database-url") == "" {
		if c.String("database-template") != "" {
			logger(c).Warn("no database: --database-template is set, --database-url is not (a protected SHIPPER_DATABASE_URL, on an unprotected branch?)")
		}
		return nil, nil
	}
	return openDatabase(c)
}

// openDatabase is the engine of the database flags (it connects to
// nothing).
func openDatabase(c *cli.Context) (database.Engine, error) {
	return database.Open(database.Config{URL: c.String("database-url"), Template: c.String("database-template"), Host: c.String("database-host"), Strategy: c.String("database-strategy")})
}

// configuration builds the engine's Configuration: connected to the
// cluster, or offline for render.
func configuration(c *cli.Context, online bool) (*release.Configuration, error) {
	routing, err := release.ParseRouting(c.String("router"), c.String("gateway"), c.String("gateway-section"))
	if err != nil {
		return nil, err
	}
	opts := []release.Option{
		release.WithLogger(logger(c)),
		release.WithRouting(routing),
		release.WithProject(release.Project{ID: c.String("project-id"), Path: c.String("project-path")}),
		release.WithLockLease(c.Duration("lock-lease")),
	}
	if ref := c.String("chart"); ref != "" {
		opts = append(opts, release.WithChart(release.ChartSource{Ref: ref}))
	}
	db, err := databaseEngine(c)
	if err != nil {
		return nil, err
	}
	if db != nil {
		opts = append(opts, release.WithDatabase(db))
	}
	if !online {
		return release.NewConfiguration(nil, opts...)
	}
	requests := &kube.Requests{}
	c.App.Metadata["requests"] = requests // logger(c) made Metadata
	rc, err := kube.Options{
		Kubeconfig: c.String("kubeconfig"), Context: c.String("kube-context"),
		URL: c.String("kube-url"), Token: c.String("kube-token"),
		CAFile: c.String("kube-ca-file"), CAData: c.String("kube-ca"),
		Insecure: c.Bool("insecure-skip-tls-verify"), Log: logger(c), Requests: requests,
	}.RESTConfig()
	if err != nil {
		return nil, err
	}
	return release.NewConfiguration(rc, opts...)
}

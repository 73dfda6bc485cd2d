package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "return production to the previous promotion, or to a SHA or revision; print the SHA now live",
		UsageText: `shipper rollback [--to SHA|REVISION]

Examples:
   shipper rollback --app myapp            # the promotion before that served another commit
   shipper rollback --app myapp --to 3f9a1c2e
   shipper rollback --app myapp --to 4     # a revision of helm history myapp-production`,
		Flags: flags([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "commit SHA or production revision (default: the previous promotion that served)", EnvVars: []string{"SHIPPER_ROLLBACK_TO"}},
			waitFlag("when production is routed by an HTTPRoute, wait until the Gateway serves it"),
			drainDelayFlag(),
			secretPrefixFlag("variables NAME with this prefix (the production environment's) become the secret environment of the commit rolled back to"),
		}, verifyFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(appNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			rb := release.NewRollback(cfg)
			rb.Wait, rb.Verify, rb.DrainDelay = c.Bool("wait"), verify(c), c.Duration("drain-delay")
			var err error
			if rb.Secrets, rb.SecretPrefix, err = secretVariables(c); err != nil {
				return err
			}
			prod, err := rb.Run(ctx, n, c.String("to"))
			if err != nil {
				return err
			}
			return emit(c, prod, prod.SHA+"\n")
		}),
	}
}

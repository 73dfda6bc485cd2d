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
   shipper rollback --app myapp --to 4     # a revision of helm history myapp-production

A rollback returns to a revision with the host it was promoted with: with
--domain or --host (promote's), a host other than theirs is reported.`,
		Flags: flags([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "commit SHA or production revision (default: the previous promotion that served)", EnvVars: []string{"SHIPPER_ROLLBACK_TO"}},
			productionHostFlag(),
			dotenvFlag(),
			waitFlag(),
			drainDelayFlag(),
			secretPrefixFlag(),
		}, verifyFlags(), hostFlags(), databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(appNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			want, err := productionURL(c, n)
			if err != nil {
				return err
			}
			rb := release.NewRollback(cfg)
			rb.Wait, rb.Verify, rb.DrainDelay = c.Bool("wait"), verify(c), c.Duration("drain-delay")
			if rb.Secrets, rb.SecretPrefix, err = secretVariables(c); err != nil {
				return err
			}
			prod, err := rb.Run(ctx, n, c.String("to"))
			if err != nil {
				return err
			}
			if want != "" && prod.URL != want {
				logger(c).Warn("production is back on the host of the revision it returned to, not the one --domain and --host give: promote to move it",
					"url", prod.URL, "flags", want)
			}
			if err := writeDotenv(c.String("dotenv"), "SHIPPER_URL", prod.URL); err != nil {
				return err
			}
			return emit(c, prod, prod.SHA+"\n")
		}),
	}
}

// productionURL is the production URL --domain, --host and --url-scheme
// give, as promote builds it; "" when neither --domain nor --host is set.
func productionURL(c *cli.Context, n release.Names) (string, error) {
	h := hosts(c, true)
	if h.Domain == "" && h.ProductionTemplate == "" {
		return "", nil
	}
	host, err := h.Production(n)
	if err != nil {
		return "", err
	}
	return h.Scheme + "://" + host, nil
}

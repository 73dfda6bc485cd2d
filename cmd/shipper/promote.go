package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "promote",
		Usage: "point the production host at a deployed commit; print the production URL",
		UsageText: `shipper promote --sha SHA --domain DOMAIN [--host HOST] [--weight PERCENT] [-f production.yaml]

Examples:
   shipper promote --app myapp --sha 7c77eb36 --domain example.com
   # stdout: https://myapp.example.com
   shipper promote --app myapp --sha 7c77eb36 --set production.replicaCount=3 \
     --set production.resources.requests.cpu=500m   # production size: up before the switch
   shipper promote --app myapp --sha 7c77eb36 --weight 10   # canary (gateway router): 10 %
   shipper promote --app myapp --sha 7c77eb36 --weight 50   # moves it on
   shipper promote --app myapp --sha 7c77eb36               # finishes; shipper rollback aborts`,
		Flags: flags(commitFlags(), []cli.Flag{
			productionHostFlag(),
			dotenvFlag(),
			weightFlag(),
			waitFlag(),
			drainDelayFlag(),
			secretPrefixFlag(),
			migrateFlag(),
		}, verifyFlags(), hostFlags(), chartFlags(), databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(commitNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			p, err := newPromote(c, cfg)
			if err != nil {
				return err
			}
			if err := checkHosts(p.Hosts, n, true); err != nil {
				return err
			}
			prod, err := p.Run(ctx, n)
			if err != nil {
				return err
			}
			if err := writeDotenv(c.String("dotenv"), "SHIPPER_URL", prod.URL); err != nil {
				return err
			}
			return emit(c, prod, prod.URL+"\n")
		}),
	}
}

// newPromote is the Promote the flags describe; render --production builds
// the same one.
func newPromote(c *cli.Context, cfg *release.Configuration) (*release.Promote, error) {
	vals, err := chartValues(c)
	if err != nil {
		return nil, err
	}
	p := release.NewPromote(cfg)
	p.Hosts, p.Values, p.Wait, p.Verify = hosts(c, true), vals, c.Bool("wait"), verify(c)
	p.Weight, p.DrainDelay = c.Int("weight"), c.Duration("drain-delay")
	p.Migrate = c.String("migrate")
	if p.Secrets, p.SecretPrefix, err = secretVariables(c); err != nil {
		return nil, err
	}
	return p, nil
}

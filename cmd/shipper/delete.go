package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "uninstall a commit's release and delete its namespace (refuses the live commit)",
		UsageText: `shipper delete --sha SHA

Example (a GitLab stop job; running it twice is fine):
   shipper delete --app myapp --sha 7c77eb36
   # the stop job of a branch's review environment takes its alias too:
   shipper delete --app myapp --sha 7c77eb36 --with-alias`,
		Flags: flags(commitFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "with-alias", Usage: "also delete the branch aliases that serve the commit (else they make delete refuse it)", EnvVars: []string{"SHIPPER_WITH_ALIAS"}},
		}, globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(commitNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			del := release.NewDelete(cfg)
			del.WithAlias = c.Bool("with-alias")
			d, err := del.Run(ctx, n)
			if err != nil {
				return err
			}
			if d.Gone {
				logger(c).Info("note: nothing to delete, the release is already gone", "release", d.Release)
			}
			return emit(c, d, "")
		}),
	}
}

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
   # the stop job of a branch's review environment takes the branch's alias
   # too, and keeps the commit if production or another branch still needs it:
   shipper delete --app myapp --sha 7c77eb36 --ref feature-login --with-alias`,
		Flags: flags(commitFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "with-alias", Usage: "a branch's stop job: delete --ref's alias whatever it serves, then the commit unless production or another branch's alias needs it (kept, exit 0)", EnvVars: []string{"SHIPPER_WITH_ALIAS"}},
			refFlag(),
		}, databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: clusterAction(commitNames, func(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
			del := release.NewDelete(cfg)
			// --ref is checked as deploy checks it, and used only with
			// --with-alias.
			aliased, err := withRef(c, n)
			if err != nil {
				return err
			}
			if del.WithAlias = c.Bool("with-alias"); del.WithAlias {
				if c.String("ref") == "" {
					return usageErrorf("--with-alias needs the branch whose alias goes: --ref (GitLab sets CI_COMMIT_REF_SLUG)")
				}
				n = aliased
				del.WithAlias = n.Ref != "" // a SHA-like ref never had an alias
			}
			d, err := del.Run(ctx, n)
			if err != nil {
				return err
			}
			if d.Gone {
				logger(c).Info("note: nothing to delete, the release is already gone", "release", d.Release)
			}
			if d.Kept != "" {
				logger(c).Info("note: the commit was kept", "release", d.Release, "why", d.Kept)
			}
			return emit(c, d, "")
		}),
	}
}

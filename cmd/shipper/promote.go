package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "promote",
		Usage: "point the production host at a deployed commit; print the production URL",
		UsageText: `shipper promote --sha SHA --domain DOMAIN [--host HOST]

Example:
   shipper promote --app myapp --sha 7c77eb36 --domain example.com
   # stdout: https://myapp.example.com`,
		Flags: append(append([]cli.Flag{
			shaFlag(), fullSHAFlag(),
			&cli.StringFlag{Name: "host", Usage: "production host, or a template with {app}, {domain}", EnvVars: []string{"SHIPPER_PRODUCTION_HOST"}},
			&cli.StringFlag{Name: "dotenv", Usage: "write SHIPPER_URL=<url> here for GitLab's artifacts:reports:dotenv", EnvVars: []string{"SHIPPER_DOTENV"}},
		}, chartFlags()...), globalFlags()...),
		OnUsageError: onUsageError,
		Action: clusterAction(func(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
			sha, err := commitSHA(c)
			if err != nil {
				return err
			}
			vals, err := chartValues(c)
			if err != nil {
				return usageError{err}
			}
			p := release.NewPromote(cfg)
			p.Hosts, p.Values = hosts(c, true), vals
			prod, err := p.Run(ctx, appName, sha)
			if err != nil {
				return err
			}
			if err := writeDotenv(c.String("dotenv"), "SHIPPER_URL", prod.URL); err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c, prod)
			}
			_, err = fmt.Fprintln(c.App.Writer, prod.URL)
			return err
		}),
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "return production to the previous promotion, or to a SHA or revision; print the SHA now live",
		UsageText: `shipper rollback [--to SHA|REVISION]

Examples:
   shipper rollback --app myapp            # the promotion before the current one
   shipper rollback --app myapp --to 3f9a1c2e
   shipper rollback --app myapp --to 4     # a revision of helm history myapp-production`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "commit SHA or production revision (default: the previous one)", EnvVars: []string{"SHIPPER_ROLLBACK_TO"}},
		}, globalFlags()...),
		OnUsageError: onUsageError,
		Action: clusterAction(func(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
			prod, err := release.NewRollback(cfg).Run(ctx, appName, c.String("to"))
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				return printJSON(c, prod)
			}
			_, err = fmt.Fprintln(c.App.Writer, prod.SHA)
			return err
		}),
	}
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "uninstall a commit's release and delete its namespace (refuses the live commit)",
		UsageText: `shipper delete --sha SHA

Example (a GitLab stop job; running it twice is fine):
   shipper delete --app myapp --sha 7c77eb36`,
		Flags:        append([]cli.Flag{shaFlag(), fullSHAFlag()}, globalFlags()...),
		OnUsageError: onUsageError,
		Action: clusterAction(func(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
			sha, err := commitSHA(c)
			if err != nil {
				return err
			}
			d, err := release.NewDelete(cfg).Run(ctx, appName, sha)
			if err != nil {
				return err
			}
			if d.Gone {
				logger(c).Info("note: nothing to delete, the release is already gone", "release", d.Release)
			}
			if jsonOutput(c) {
				return printJSON(c, d)
			}
			return nil
		}),
	}
}

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/release"
)

func renderCommand() *cli.Command {
	return &cli.Command{
		Name:  "render",
		Usage: "print the manifests deploy (or promote, with --production) would apply; needs no cluster",
		UsageText: `shipper render --sha SHA --domain DOMAIN [--image REF] [--production]

Example:
   shipper render --app myapp --sha 7c77eb36 --domain example.com \
     --image registry.example.com/group/myapp:7c77eb36 --set replicaCount=2`,
		Flags: flags(commitFlags(), imageFlags(), []cli.Flag{
			&cli.StringFlag{Name: "host", Usage: "the host, or a template with {app}, {sha}, {domain} (default: $SHIPPER_PREVIEW_HOST, or $SHIPPER_PRODUCTION_HOST with --production)"},
			&cli.BoolFlag{Name: "production", Usage: "render the production release instead of the commit's"},
			&cli.BoolFlag{Name: "pull-secret", Usage: "render as if pull credentials were given"},
			&cli.StringFlag{Name: "pull-user", Usage: "registry user the cluster pulls with: renders the pull secret as deploy would", EnvVars: []string{"SHIPPER_PULL_USER", "CI_DEPLOY_USER"}},
		}, chartFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			n, err := commitNames(c)
			if err != nil {
				return err
			}
			cfg, err := configuration(c, false)
			if err != nil {
				return err
			}
			out, err := render(c, cfg, n)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, out)
			return err
		},
	}
}

// render is what deploy, or promote with --production, would apply: the
// same operation built from the same flags, rendered instead of run.
func render(c *cli.Context, cfg *release.Configuration, n release.Names) (string, error) {
	if c.Bool("production") {
		p, err := newPromote(c, cfg)
		if err != nil {
			return "", err
		}
		return p.Render(c.Context, n)
	}
	d, ref, err := newDeploy(c, cfg, n)
	if err != nil {
		return "", err
	}
	if c.Bool("pull-secret") && d.Credentials == nil {
		d.Credentials = &release.RegistryCredentials{}
	}
	return d.Render(c.Context, n, ref)
}

package main

import (
	"context"
	"os"

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
			renderHostFlag(),
			&cli.BoolFlag{Name: "production", Usage: "render what promote applies: the production release's route, then the commit at production size (production: values, --secret-prefix variables)"},
			weightFlag(),
			envFlag(),
			secretPrefixFlag(),
			&cli.BoolFlag{Name: "pull-secret", Usage: "render as if pull credentials were given"},
			pullUserFlag(),
			migrateFlag(),
		}, protectFlags(), hostFlags(), chartFlags(), databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			n, err := commitNames(c)
			if err != nil {
				return err
			}
			// What deploy would create: deploy takes fewer than 8
			// characters only for a commit it finds deployed, which only
			// the cluster knows.
			if err := release.CheckNewCommitSHA(n.SHA); err != nil {
				return err
			}
			cfg, err := configuration(c, false)
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(c) // an oci:// chart is pulled
			defer cancel()
			out, err := render(ctx, c, cfg, n)
			if err != nil {
				return err
			}
			return emit(c, struct {
				Manifest string `json:"manifest"`
			}{out}, out)
		},
	}
}

// render is what deploy, or promote with --production, would apply: the
// same operation built from the same flags, rendered instead of run.
func render(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) (string, error) {
	if c.Bool("production") {
		// Both releases promote changes: production's route, and the
		// commit's at production size (the outgoing commit returns to
		// what plain `shipper render` shows for it), rendered when the
		// image is known.
		p, err := newPromote(c, cfg)
		if err != nil {
			return "", err
		}
		route, err := p.Render(ctx, n)
		if err != nil {
			return "", err
		}
		route = "# The production release: the route promote switches.\n" + route
		if c.String("image") == "" && c.String("repository") == "" {
			return route + "\n# The commit at production size: give --image to render it.\n", nil
		}
		d, ref, err := newDeploy(c, cfg, n)
		if err != nil {
			return "", err
		}
		// --host is production's here: the commit keeps its preview host.
		d.Hosts.PreviewTemplate = os.Getenv("SHIPPER_PREVIEW_HOST")
		sized, err := d.RenderLive(ctx, n, ref, p)
		if err != nil {
			return "", err
		}
		return route + "\n# The commit's release at production size, as promote sizes it up before the switch.\n" + sized, nil
	}
	d, ref, err := newDeploy(c, cfg, n)
	if err != nil {
		return "", err
	}
	if c.Bool("pull-secret") && d.Credentials == nil {
		d.Credentials = &release.RegistryCredentials{}
	}
	return d.Render(ctx, n, ref)
}

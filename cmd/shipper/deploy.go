package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/release"
)

func deployCommand() *cli.Command {
	return &cli.Command{
		Name:  "deploy",
		Usage: "install a commit as its own Helm release in its own namespace; print its preview URL",
		UsageText: `shipper deploy --sha SHA --domain DOMAIN [options]

Example:
   shipper deploy --app myapp --sha 7c77eb36 --domain preview.example.com \
     --image registry.example.com/group/myapp:7c77eb36 --dotenv deploy.env
   # stdout: https://myapp-7c77eb36.preview.example.com`,
		Flags: append(append([]cli.Flag{
			shaFlag(), fullSHAFlag(),
			&cli.StringFlag{Name: "image", Usage: "image reference (default $CI_REGISTRY_IMAGE:<short sha>), resolved to its digest", EnvVars: []string{"SHIPPER_IMAGE_REF"}},
			&cli.StringFlag{Name: "repository", Usage: "repository the default image is in", EnvVars: []string{"SHIPPER_IMAGE", "CI_REGISTRY_IMAGE"}},
			&cli.BoolFlag{Name: "resolve", Value: true, Usage: "pin the image to its digest before installing (fails fast when it is missing)", EnvVars: []string{"SHIPPER_RESOLVE"}},
			&cli.StringFlag{Name: "host", Usage: "preview host, or a template with {app}, {sha}, {domain}", EnvVars: []string{"SHIPPER_PREVIEW_HOST"}},
			&cli.StringFlag{Name: "pull-user", Usage: "registry user the cluster pulls with (a deploy token)", EnvVars: []string{"SHIPPER_PULL_USER", "CI_DEPLOY_USER"}},
			&cli.StringFlag{Name: "pull-password", Usage: "its password (never printed)", EnvVars: []string{"SHIPPER_PULL_PASSWORD", "CI_DEPLOY_PASSWORD"}},
			&cli.StringFlag{Name: "registry-user", Usage: "registry user for resolving the image", EnvVars: []string{"SHIPPER_REGISTRY_USER", "CI_REGISTRY_USER"}},
			&cli.StringFlag{Name: "registry-password", Usage: "its password (never printed)", EnvVars: []string{"SHIPPER_REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD"}},
			&cli.BoolFlag{Name: "insecure-registry", Usage: "allow plain HTTP to a registry not on loopback", EnvVars: []string{"SHIPPER_INSECURE_REGISTRY"}},
			&cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until the Deployment is available", EnvVars: []string{"SHIPPER_WAIT"}},
			&cli.StringFlag{Name: "dotenv", Usage: "write SHIPPER_URL=<url> here for GitLab's artifacts:reports:dotenv", EnvVars: []string{"SHIPPER_DOTENV"}},
		}, chartFlags()...), globalFlags()...),
		OnUsageError: onUsageError,
		Action:       clusterAction(runDeploy),
	}
}

func runDeploy(ctx context.Context, c *cli.Context, cfg *release.Configuration, appName string) error {
	sha, err := commitSHA(c)
	if err != nil {
		return err
	}
	names, err := release.NewNames(appName, sha)
	if err != nil {
		return usageError{err}
	}
	ref := c.String("image")
	if ref == "" {
		if c.String("repository") == "" {
			return usageError{fmt.Errorf("--image is empty: give the image reference (or set CI_REGISTRY_IMAGE)")}
		}
		ref = c.String("repository") + ":" + names.Short
	}
	vals, err := chartValues(c)
	if err != nil {
		return usageError{err}
	}
	if c.Bool("resolve") {
		opts := image.Options{Insecure: c.Bool("insecure-registry"), Keychain: authn.DefaultKeychain}
		if u := c.String("registry-user"); u != "" {
			opts.Auth = &authn.Basic{Username: u, Password: c.String("registry-password")}
		} else if u := c.String("pull-user"); u != "" {
			opts.Auth = &authn.Basic{Username: u, Password: c.String("pull-password")}
		}
		if ref, err = image.Resolve(ctx, ref, opts); err != nil {
			return imageError("resolving the image", err)
		}
		logger(c).Info("resolved image", "ref", ref)
	}
	d := release.NewDeploy(cfg)
	d.Hosts, d.Values, d.Wait = hosts(c, false), vals, c.Bool("wait")
	d.Timeout = c.Duration("timeout")
	if u := c.String("pull-user"); u != "" {
		d.Credentials = &release.RegistryCredentials{Username: u, Password: c.String("pull-password")}
	}
	commit, err := d.Run(ctx, appName, sha, ref)
	if err != nil {
		return err
	}
	if err := writeDotenv(c.String("dotenv"), "SHIPPER_URL", commit.URL); err != nil {
		return err
	}
	if jsonOutput(c) {
		return printJSON(c, commit)
	}
	_, err = fmt.Fprintln(c.App.Writer, commit.URL)
	return err
}

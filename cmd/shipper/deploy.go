package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

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
   # stdout: https://myapp-7c77eb36.preview.example.com
   # with --ref main (GitLab: CI_COMMIT_REF_SLUG), https://myapp-main.preview.example.com
   # follows the branch; deploy.env gets SHIPPER_URL and SHIPPER_ALIAS_URL`,
		Flags: flags(commitFlags(), imageFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "resolve", Value: true, Usage: "pin the image to its digest before installing (fails fast when it is missing)", EnvVars: []string{"SHIPPER_RESOLVE"}},
			&cli.StringFlag{Name: "host", Usage: "preview host, or a template with {app}, {sha}, {domain}", EnvVars: []string{"SHIPPER_PREVIEW_HOST"}},
			&cli.StringFlag{Name: "ref", Usage: "branch (or tag) the commit is from: its alias <app>-<ref>.<domain> moves to the commit once it is available, unless a newer commit of the branch has it; '' for none", EnvVars: []string{"SHIPPER_REF", "CI_COMMIT_REF_SLUG"}},
			&cli.StringFlag{Name: "alias-host", Usage: "alias host template with {app}, {ref}, {domain} (default {app}-{ref}.{domain})", EnvVars: []string{"SHIPPER_ALIAS_HOST"}},
			&cli.StringFlag{Name: "commit-time", Usage: "commit time (RFC 3339): an alias moves only to a commit at least as new as the one it serves (default: order of first deploys)", EnvVars: []string{"SHIPPER_COMMIT_TIME", "CI_COMMIT_TIMESTAMP"}},
			&cli.StringFlag{Name: "pull-user", Usage: "registry user the cluster pulls with (a deploy token)", EnvVars: []string{"SHIPPER_PULL_USER", "CI_DEPLOY_USER"}},
			&cli.StringFlag{Name: "pull-password", Usage: "its password (never printed)", EnvVars: []string{"SHIPPER_PULL_PASSWORD", "CI_DEPLOY_PASSWORD"}},
		}, registryFlags(), []cli.Flag{
			&cli.StringSliceFlag{Name: "env", Usage: "plain (non-secret) environment variable NAME=VALUE of the app (repeatable); secrets come from --secret-prefix variables"},
			secretPrefixFlag("variables NAME with this prefix become the app's secret environment (a Secret, never chart values or output)"),
			waitFlag("wait until the Deployment is available (and, on the gateway router, its route accepted)"),
			dotenvFlag(),
		}, verifyFlags(), chartFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action:       clusterAction(commitNames, runDeploy),
	}
}

func secretPrefixFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "secret-prefix", Value: "K8S_SECRET_", Usage: usage, EnvVars: []string{"SHIPPER_SECRET_PREFIX"}}
}

// drainDelayFlag is promote's and rollback's.
func drainDelayFlag() cli.Flag {
	return &cli.DurationFlag{Name: "drain-delay", Value: release.DefaultDrainDelay, Usage: "how long the outgoing commit keeps its production size after the switch before it returns to its preview size (0: at once)", EnvVars: []string{"SHIPPER_DRAIN_DELAY"}}
}

// secretVariables are the job's --secret-prefix variables (name without
// the prefix: value), and the prefix: the commit's for deploy, the
// production environment's for promote and rollback.
func secretVariables(c *cli.Context) (map[string]string, string, error) {
	prefix := c.String("secret-prefix")
	if prefix == "" {
		return nil, "", nil
	}
	s := secretsFromEnv(os.Environ(), prefix)
	return s, prefix, release.CheckSecretNames(s, prefix)
}

func dotenvFlag() cli.Flag {
	return &cli.StringFlag{Name: "dotenv", Usage: "write SHIPPER_URL=<url> here for GitLab's artifacts:reports:dotenv", EnvVars: []string{"SHIPPER_DOTENV"}}
}

// newDeploy is the Deploy the flags describe, and the image it deploys
// for commit n; render builds the same.
func newDeploy(c *cli.Context, cfg *release.Configuration, n release.Names) (*release.Deploy, string, error) {
	ref, err := imageRef(c, n)
	if err != nil {
		return nil, "", err
	}
	vals, err := chartValues(c)
	if err != nil {
		return nil, "", err
	}
	if vals, err = withEnv(vals, c.StringSlice("env")); err != nil {
		return nil, "", err
	}
	d := release.NewDeploy(cfg)
	if d.Secrets, d.SecretPrefix, err = secretVariables(c); err != nil {
		return nil, "", err // before the image is resolved: input first
	}
	d.Hosts, d.Values, d.Wait, d.Verify = hosts(c, false), vals, c.Bool("wait"), verify(c)
	d.Hosts.AliasTemplate = c.String("alias-host")
	if t := c.String("commit-time"); t != "" {
		if d.CommitTime, err = time.Parse(time.RFC3339, t); err != nil {
			return nil, "", &release.UsageError{Input: "--commit-time", Value: t, Rule: "must be RFC 3339, like 2026-11-25T19:44:38+00:00 (GitLab's CI_COMMIT_TIMESTAMP)"}
		}
	}
	if u := c.String("pull-user"); u != "" {
		d.Credentials = &release.RegistryCredentials{Username: u, Password: c.String("pull-password")}
	}
	return d, ref, nil
}

// secretsFromEnv are the variables of environ named prefix+NAME, as NAME:
// value.
func secretsFromEnv(environ []string, prefix string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			out[name] = v
		}
	}
	return out
}

// withEnv adds --env NAME=VALUE pairs to the chart values' env map. A bad
// pair names its name only.
func withEnv(vals map[string]any, pairs []string) (map[string]any, error) {
	if len(pairs) == 0 {
		return vals, nil
	}
	env, _ := vals["env"].(map[string]any)
	if env == nil {
		env = map[string]any{}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, &release.UsageError{Input: "--env", Value: k, Rule: "must be NAME=VALUE"}
		}
		env[k] = v
	}
	if vals == nil {
		vals = map[string]any{}
	}
	vals["env"] = env
	return vals, nil
}

// withRef adds --ref's alias names to n; no --ref, no alias. A branch or
// tag named like a SHA (a tag 20261201) that comes from GitLab's
// CI_COMMIT_REF_SLUG, not from --ref or SHIPPER_REF, deploys without an
// alias, with a note, instead of failing the pipeline.
func withRef(c *cli.Context, n release.Names) (release.Names, error) {
	ref := c.String("ref")
	if ref == "" {
		return n, nil
	}
	m, err := n.WithRef(ref)
	if errors.Is(err, release.ErrRefLikeSHA) && os.Getenv("SHIPPER_REF") == "" && os.Getenv("CI_COMMIT_REF_SLUG") == ref && !flagOnCommandLine("ref") {
		logger(c).Warn("no branch alias: the ref looks like a commit SHA, so its host could be a commit's preview host", "ref", ref)
		return n, nil
	}
	return m, err
}

// flagOnCommandLine reports whether --name was given as an argument (not
// from the environment).
func flagOnCommandLine(name string) bool {
	for _, a := range os.Args[1:] {
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func runDeploy(ctx context.Context, c *cli.Context, cfg *release.Configuration, n release.Names) error {
	n, err := withRef(c, n)
	if err != nil {
		return err
	}
	d, ref, err := newDeploy(c, cfg, n)
	if err != nil {
		return err
	}
	if c.Bool("resolve") {
		opts := registryOptions(c, c.String("pull-user"), c.String("pull-password"))
		if ref, err = image.Resolve(ctx, ref, opts); err != nil {
			return fmt.Errorf("resolving the image: %w", err)
		}
		logger(c).Info("resolved image", "ref", ref)
	}
	commit, err := d.Run(ctx, n, ref)
	if err != nil {
		return err
	}
	dotenv := []string{"SHIPPER_URL", commit.URL}
	if commit.Alias != nil {
		dotenv = append(dotenv, "SHIPPER_ALIAS_URL", commit.Alias.URL)
	}
	if err := writeDotenv(c.String("dotenv"), dotenv...); err != nil {
		return err
	}
	return emit(c, commit, commit.URL+"\n")
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/gate"
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
   # with --ref main (GitLab: CI_COMMIT_REF_SLUG), https://myapp--main.preview.example.com
   # follows the branch; deploy.env gets SHIPPER_URL and SHIPPER_ALIAS_URL`,
		Flags: flags(commitFlags(), imageFlags(), []cli.Flag{
			&cli.BoolFlag{Name: "resolve", Value: true, Usage: "pin the image to its digest before installing (fails fast when it is missing)", EnvVars: []string{"SHIPPER_RESOLVE"}},
			previewHostFlag(),
			refFlag(),
			&cli.StringFlag{Name: "alias-host", Usage: "alias host template with {app}, {ref}, {domain} (default {app}--{ref}.{domain})", EnvVars: []string{"SHIPPER_ALIAS_HOST"}},
			commitTimeFlag(),
			pullUserFlag(),
			pullPasswordFlag(),
		}, registryFlags(), []cli.Flag{
			envFlag(),
			secretPrefixFlag(),
			waitFlag(),
			dotenvFlag(),
			migrateFlag(),
		}, protectFlags(), verifyFlags(), hostFlags(), chartFlags(), databaseFlags(), globalFlags()),
		OnUsageError: onUsageError,
		Action:       clusterAction(commitNames, runDeploy),
	}
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

// newDeploy is the Deploy the flags describe, and the image it deploys
// for commit n; render builds the same.
func newDeploy(c *cli.Context, cfg *release.Configuration, n release.Names) (*release.Deploy, string, error) {
	ref, _, err := imageRef(c, n.Short)
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
	d.Migrate = c.String("migrate")
	if d.CommitTime, err = commitTime(c); err != nil {
		return nil, "", err
	}
	if u := c.String("pull-user"); u != "" {
		d.Credentials = &release.RegistryCredentials{Username: u, Password: c.String("pull-password")}
	}
	if d.Protection, err = protection(c); err != nil {
		return nil, "", err
	}
	return d, ref, nil
}

// protectFlags choose how a deploy protects its preview (deploy, render).
func protectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "protect", Value: string(release.ProtectPreviews), Usage: "which hosts need a login: previews (and branch aliases; production public), all, or none", EnvVars: []string{"SHIPPER_PROTECT"}},
		&cli.StringFlag{Name: "gate-image", Usage: "the image of the gate protected pods run: shipper's job image, which holds shipper-gate", EnvVars: []string{"SHIPPER_GATE_IMAGE", "CI_JOB_IMAGE"}},
		&cli.StringFlag{Name: "oidc-issuer", Usage: "protected hosts also sign in with this OpenID Connect provider, https://gitlab.example.com (its client secret from " + gate.OIDCSecretVar + ")", EnvVars: []string{"SHIPPER_OIDC_ISSUER"}},
		&cli.StringFlag{Name: "oidc-client-id", Usage: "the gate's application ID at --oidc-issuer", EnvVars: []string{"SHIPPER_OIDC_CLIENT_ID"}},
		&cli.StringFlag{Name: "oidc-groups", Usage: "the groups whose members get in, paths separated by commas (acme/web,acme/qa)", EnvVars: []string{"SHIPPER_OIDC_GROUPS"}},
		&cli.BoolFlag{Name: "oidc-allow-any-user", Usage: "let in anyone --oidc-issuer signs in instead of --oidc-groups (on gitlab.com: anyone with an account)", EnvVars: []string{"SHIPPER_OIDC_ALLOW_ANY_USER"}},
		&cli.StringFlag{Name: "oidc-name", Usage: "the provider's name on the login page's button (default GitLab)", EnvVars: []string{"SHIPPER_OIDC_NAME"}},
	}
}

// protection is the Protection the flags describe; the password and the
// bypass come from the environment only (masked GitLab variables), never
// from a flag, which the process list shows.
func protection(c *cli.Context) (*release.Protection, error) {
	mode, err := release.ParseProtect(c.String("protect"))
	if err != nil {
		return nil, err
	}
	p := &release.Protection{Mode: mode, Image: c.String("gate-image"),
		Password: os.Getenv(gatePasswordVar), Bypass: os.Getenv(gateBypassVar)}
	if c.String("oidc-issuer") != "" || c.String("oidc-client-id") != "" || c.String("oidc-groups") != "" || c.Bool("oidc-allow-any-user") {
		p.OIDC = &release.ProtectionOIDC{Issuer: c.String("oidc-issuer"), ClientID: c.String("oidc-client-id"),
			Groups: c.String("oidc-groups"), Name: c.String("oidc-name"), AllowAnyUser: c.Bool("oidc-allow-any-user")}
		p.OIDCSecret = os.Getenv(gate.OIDCSecretVar)
	}
	return p, nil
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
			return nil, &release.UsageError{Input: "--env", Value: release.NotShown, Rule: "must be NAME=VALUE"}
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
	if err := checkHosts(d.Hosts, n, false); err != nil {
		return err // before the registry is asked: input first
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

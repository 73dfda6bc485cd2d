package main

import (
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/gate"
)

// oidcSecretVar holds the gate's client secret at the provider: from the
// environment only, like the gate's other secrets.
const oidcSecretVar = "SHIPPER_OIDC_CLIENT_SECRET"

// oidcFlags are the gate's sign-in with an OpenID Connect provider.
func oidcFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "oidc-issuer", Usage: "sign in with this OpenID Connect provider, https://gitlab.example.com (its client secret from " + oidcSecretVar + ")", EnvVars: []string{"SHIPPER_OIDC_ISSUER"}},
		&cli.StringFlag{Name: "oidc-client-id", Usage: "the gate's application ID at --oidc-issuer", EnvVars: []string{"SHIPPER_OIDC_CLIENT_ID"}},
		&cli.StringFlag{Name: "oidc-groups", Usage: "the groups whose members get in, paths separated by commas (acme/web,acme/qa)", EnvVars: []string{"SHIPPER_OIDC_GROUPS"}},
		&cli.BoolFlag{Name: "oidc-allow-any-user", Usage: "let in anyone --oidc-issuer signs in instead of --oidc-groups (on gitlab.com: anyone with an account)", EnvVars: []string{"SHIPPER_OIDC_ALLOW_ANY_USER"}},
		&cli.StringFlag{Name: "oidc-name", Value: "GitLab", Usage: "the provider's name on the login page's button", EnvVars: []string{"SHIPPER_OIDC_NAME"}},
	}
}

// groupPath is a GitLab group's full path.
var groupPath = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$`)

// withOIDC adds the sign-in with a provider to cfg when --oidc-issuer is
// set, and the gate's log. A bad flag is a usage error naming it; the
// secret is never quoted.
func withOIDC(c *cli.Context, cfg *gate.Config) error {
	cfg.Log = logger(c)
	issuer := c.String("oidc-issuer")
	if issuer == "" {
		for _, f := range []string{"oidc-client-id", "oidc-groups", "oidc-allow-any-user"} {
			if c.IsSet(f) {
				return usageErrorf("--%s needs --oidc-issuer, the provider's URL", f)
			}
		}
		return nil
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return usageErrorf("--oidc-issuer must be the provider's https URL, like https://gitlab.example.com")
	}
	if c.String("oidc-client-id") == "" {
		return usageErrorf("--oidc-issuer needs --oidc-client-id, the gate's application ID there")
	}
	secret := os.Getenv(oidcSecretVar)
	if secret == "" {
		return usageErrorf("--oidc-issuer needs %s, the application's secret", oidcSecretVar)
	}
	var groups []string
	if s := strings.TrimSpace(c.String("oidc-groups")); s != "" {
		for _, g := range strings.Split(s, ",") {
			if g = strings.TrimSpace(g); !groupPath.MatchString(g) {
				return usageErrorf("--oidc-groups must be group paths separated by commas, like acme/web,acme/qa")
			}
			groups = append(groups, g)
		}
	}
	switch {
	case len(groups) == 0 && !c.Bool("oidc-allow-any-user"):
		return usageErrorf("--oidc-issuer needs --oidc-groups, the groups whose members get in (or --oidc-allow-any-user)")
	case len(groups) > 0 && c.Bool("oidc-allow-any-user"):
		return usageErrorf("--oidc-groups and --oidc-allow-any-user exclude each other")
	}
	name := c.String("oidc-name")
	if name == "" || len(name) > 40 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return usageErrorf("--oidc-name must be a short name, like GitLab")
	}
	cfg.OIDC = &gate.OIDC{
		Issuer: issuer, ClientID: c.String("oidc-client-id"), ClientSecret: secret, Name: name,
		Groups: groups, AllowAnyUser: c.Bool("oidc-allow-any-user"),
	}
	return nil
}

// loopback is whether host is this machine: a provider there may use
// plain http (a test's, a developer's).
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

package gate

import (
	"flag"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// OIDCSecretVar holds the gate's client secret at the provider: from the
// environment only, like the gate's other secrets.
const OIDCSecretVar = "SHIPPER_OIDC_CLIENT_SECRET"

// oidcOptions are the flags of the sign-in with an OpenID Connect
// provider; each defaults to its SHIPPER_OIDC_* variable.
type oidcOptions struct {
	issuer, clientID, groups, name string
	anyUser                        bool
}

func (o *oidcOptions) register(fs *flag.FlagSet, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&o.issuer, "oidc-issuer", env("SHIPPER_OIDC_ISSUER", ""), "sign in with this OpenID Connect provider, https://gitlab.example.com (its client secret from "+OIDCSecretVar+")")
	fs.StringVar(&o.clientID, "oidc-client-id", env("SHIPPER_OIDC_CLIENT_ID", ""), "the gate's application ID at --oidc-issuer")
	fs.StringVar(&o.groups, "oidc-groups", env("SHIPPER_OIDC_GROUPS", ""), "the groups whose members get in, paths separated by commas (acme/web,acme/qa)")
	fs.BoolVar(&o.anyUser, "oidc-allow-any-user", env("SHIPPER_OIDC_ALLOW_ANY_USER", "") == "true", "let in anyone --oidc-issuer signs in instead of --oidc-groups (on gitlab.com: anyone with an account)")
	fs.StringVar(&o.name, "oidc-name", env("SHIPPER_OIDC_NAME", "GitLab"), "the provider's name on the login page's button")
}

// CheckOIDC checks the gate's sign-in flags args (--oidc-*) with secret
// as the client secret, as the gate will at its start: a deploy refuses
// them before anything changes.
func CheckOIDC(args []string, secret string) error {
	var o oidcOptions
	fs := flag.NewFlagSet("gate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	none := func(string) string { return "" }
	o.register(fs, none)
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	_, err := o.config(func(k string) string {
		if k == OIDCSecretVar {
			return secret
		}
		return ""
	})
	return err
}

// groupPath is a GitLab group's full path.
var groupPath = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$`)

// config is the sign-in the flags describe, nil without --oidc-issuer. A
// bad flag is a usage error naming it; the secret is never quoted.
func (o *oidcOptions) config(getenv func(string) string) (*OIDC, error) {
	if o.issuer == "" {
		for f, given := range map[string]bool{"oidc-client-id": o.clientID != "", "oidc-groups": o.groups != "", "oidc-allow-any-user": o.anyUser} {
			if given {
				return nil, usagef("--%s needs --oidc-issuer, the provider's URL", f)
			}
		}
		return nil, nil
	}
	u, err := url.Parse(o.issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return nil, usagef("--oidc-issuer must be the provider's https URL, like https://gitlab.example.com")
	}
	if o.clientID == "" {
		return nil, usagef("--oidc-issuer needs --oidc-client-id, the gate's application ID there")
	}
	secret := getenv(OIDCSecretVar)
	if secret == "" {
		return nil, usagef("--oidc-issuer needs %s, the application's secret", OIDCSecretVar)
	}
	var groups []string
	if s := strings.TrimSpace(o.groups); s != "" {
		for _, g := range strings.Split(s, ",") {
			if g = strings.TrimSpace(g); !groupPath.MatchString(g) {
				return nil, usagef("--oidc-groups must be group paths separated by commas, like acme/web,acme/qa")
			}
			groups = append(groups, g)
		}
	}
	switch {
	case len(groups) == 0 && !o.anyUser:
		return nil, usagef("--oidc-issuer needs --oidc-groups, the groups whose members get in (or --oidc-allow-any-user)")
	case len(groups) > 0 && o.anyUser:
		return nil, usagef("--oidc-groups and --oidc-allow-any-user exclude each other")
	}
	if o.name == "" || len(o.name) > 40 || strings.ContainsFunc(o.name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, usagef("--oidc-name must be a short name, like GitLab")
	}
	return &OIDC{Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret, Name: o.name, Groups: groups, AllowAnyUser: o.anyUser}, nil
}

// loopback is whether host is this machine: a provider there may use
// plain http (a test's, a developer's).
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

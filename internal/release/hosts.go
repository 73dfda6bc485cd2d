package release

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Which hosts an app may use, as deploy/rbac/hosts.yaml's admission policy
// decides it from the cluster's settings (settings.go): shipper asks the
// same question before its first change, so a host the apiserver would
// refuse half-way through an operation is an exit 2 with nothing changed.
//
// An app owns the hosts shipper derives for it, one label under one of the
// cluster's base domains (settings key "domains"): "<app>" (production),
// "<app>-<8 hex>" (previews), "<app>--<ref>" (aliases). Other hosts are a
// project's only when an admin granted them (key "hosts.<project ID>",
// exact hosts or "*.<suffix>"), and never under a base domain.
const (
	settingDomains     = "domains"
	settingHostsPrefix = "hosts."
)

// hostAllowed reports whether app (an app part, as namespaces label it) of
// project may route host, given the cluster's base domains and the hosts
// granted to the project. It is hosts.yaml's "refused" variable, negated.
func hostAllowed(domains, grants []string, app, host string) bool {
	if slices.Contains(domains, host) || looksLikePreview(app) {
		return false // a base domain is no app's; nor a name NewNames refuses
	}
	underDomain := false // under a base domain: the apps' (a grant never reaches there)
	for _, d := range domains {
		label, ok := strings.CutSuffix(host, "."+d)
		if !ok || label == "" {
			continue
		}
		underDomain = true
		if label == app ||
			strings.HasPrefix(label, app+"-") && isShortSHA(label[len(app)+1:]) ||
			len(app) != 2 && strings.HasPrefix(label, app+aliasSeparator) && !strings.Contains(label, ".") {
			return true
		}
	}
	if underDomain {
		return false
	}
	for _, g := range grants {
		if g == host || strings.HasPrefix(g, "*.") && strings.HasSuffix(host, g[1:]) {
			return true
		}
	}
	return false
}

// HostAllowed reports whether app (an app part, as Names.AppPart and the
// namespaces' shipper.dev/app label have it) of project may route host
// under the settings s: what deploy/rbac/hosts.yaml admits. Without
// settings (s.Found false) every host is allowed: there is no policy to ask.
func (s Settings) HostAllowed(app, project, host string) bool {
	if !s.Found {
		return true
	}
	return hostAllowed(s.List(settingDomains), s.grants(project), app, host)
}

// grants are the hosts granted to project (none without a project).
func (s Settings) grants(project string) []string {
	if project == "" {
		return nil
	}
	return s.List(settingHostsPrefix + project)
}

// checkHost refuses host for n's app (a usage error: exit 2) when the
// cluster has settings and they do not give it the host.
func (c *Configuration) checkHost(ctx context.Context, n Names, host string) error {
	s, err := c.settings(ctx)
	if err != nil || !s.Found {
		return err
	}
	if s.HostAllowed(n.AppPart, c.project.ID, host) {
		return nil
	}
	domains, granted := s.List(settingDomains), s.grants(c.project.ID)
	return &UsageError{Input: "host", Value: host, Rule: fmt.Sprintf(
		"is not app %s's on this cluster: it may serve %s, %s-<sha> and %s%s<ref> under the base domains (%s; choose one with --domain) and the hosts granted to its project (%s); an admin grants hosts in ConfigMap %s/%s (docs/security.md)",
		n.AppPart, n.AppPart, n.AppPart, n.AppPart, aliasSeparator, cmp.Or(strings.Join(domains, ", "), "none"), cmp.Or(strings.Join(granted, ", "), "none"), SettingsNamespace, SettingsName)}
}

package release_test

import (
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/release"
)

// secretValue is a value no refusal may quote.
const secretValue = "s3cr3t-VALUE"

// TestRenderRefusesWhatControllersAndPodSecurityWouldMisuse: values that
// pass Kubernetes' own validation but let an ingress controller read
// another namespace's Secret, reorder routes, or take a line break, and
// securityContext values Pod Security "restricted" (every namespace
// shipper makes) refuses only when the ReplicaSet creates the pods: each
// is refused by the chart's schema, exit 2, naming the key and the rule,
// never the value.
func TestRenderRefusesWhatControllersAndPodSecurityWouldMisuse(t *testing.T) {
	ann := func(key string) string { return `ingress.annotations["` + key + `"]: ` }
	for _, tc := range []struct {
		name string
		vals map[string]any
		// want is the key and the start of the rule the refusal names.
		want string
	}{
		// Line breaks: no annotation or env value holds one.
		{name: "LF in an annotation value", vals: annotation("example.com/note", "a\nhelm.sh/resource-policy: keep "+secretValue), want: ann("example.com/note") + "must match"},
		{name: "CR in an annotation value", vals: annotation("example.com/note", secretValue+"\rX-Injected: 1"), want: ann("example.com/note") + "must match"},
		{name: "LS in an annotation value", vals: annotation("nginx.ingress.kubernetes.io/permanent-redirect", "http://auth\u2028"+secretValue), want: ann("nginx.ingress.kubernetes.io/permanent-redirect") + "must match"},
		{name: "LF in an env value", vals: under("env", map[string]any{"GREETING": "hello\n" + secretValue}), want: "env.GREETING: must match"},
		{name: "LF in a sysctl value", vals: under("podSecurityContext.sysctls", []any{map[string]any{"name": "net.ipv4.ping_group_range", "value": "0 1\n" + secretValue}}), want: "podSecurityContext.sysctls[0].value: must match"},

		// Secrets and ConfigMaps of another namespace, by <namespace>/<name>.
		{name: "nginx auth-tls-secret of another namespace", vals: annotation("nginx.ingress.kubernetes.io/auth-tls-secret", "other/"+secretValue), want: ann("nginx.ingress.kubernetes.io/auth-tls-secret") + "must match ^[^/]*$"},
		{name: "nginx proxy-ssl-secret of another namespace", vals: annotation("nginx.ingress.kubernetes.io/proxy-ssl-secret", "other/"+secretValue), want: ann("nginx.ingress.kubernetes.io/proxy-ssl-secret") + "must match"},
		{name: "nginx auth-secret of another namespace", vals: annotation("nginx.ingress.kubernetes.io/auth-secret", "kube-system/"+secretValue), want: ann("nginx.ingress.kubernetes.io/auth-secret") + "must match"},
		{name: "nginx custom-headers of another namespace", vals: annotation("nginx.ingress.kubernetes.io/custom-headers", "other/"+secretValue), want: ann("nginx.ingress.kubernetes.io/custom-headers") + "must match"},
		{name: "nginx auth-proxy-set-headers of another namespace", vals: annotation("nginx.ingress.kubernetes.io/auth-proxy-set-headers", "other/"+secretValue), want: ann("nginx.ingress.kubernetes.io/auth-proxy-set-headers") + "must match"},
		{name: "haproxy-ingress auth-tls-secret of another namespace", vals: annotation("haproxy-ingress.github.io/auth-tls-secret", "other/"+secretValue), want: ann("haproxy-ingress.github.io/auth-tls-secret") + "must match"},
		{name: "haproxy.org server-ca of another namespace", vals: annotation("haproxy.org/server-ca", "other/"+secretValue), want: ann("haproxy.org/server-ca") + "must match"},

		// Route priority: these routes before other apps'.
		{name: "traefik router.priority", vals: annotation("traefik.ingress.kubernetes.io/router.priority", "2147483647"), want: ann("traefik.ingress.kubernetes.io/router.priority") + "is refused"},
		{name: "traefik v1 priority", vals: annotation("traefik.ingress.kubernetes.io/priority", "1000"), want: ann("traefik.ingress.kubernetes.io/priority") + "is refused"},
		{name: "kong regex-priority", vals: annotation("konghq.com/regex-priority", "1000"), want: ann("konghq.com/regex-priority") + "is refused"},
		{name: "azure rule-priority", vals: annotation("appgw.ingress.kubernetes.io/rule-priority", "1"), want: ann("appgw.ingress.kubernetes.io/rule-priority") + "is refused"},
		{name: "aws alb group.order", vals: annotation("alb.ingress.kubernetes.io/group.order", "-1000"), want: ann("alb.ingress.kubernetes.io/group.order") + "is refused"},

		// Pod Security "restricted".
		{name: "privileged", vals: under("securityContext.privileged", true), want: "securityContext.privileged: must be false"},
		{name: "allowPrivilegeEscalation", vals: under("securityContext.allowPrivilegeEscalation", true), want: "securityContext.allowPrivilegeEscalation: must be false"},
		{name: "allowPrivilegeEscalation removed", vals: under("securityContext.allowPrivilegeEscalation", nil), want: "securityContext.allowPrivilegeEscalation: is required"},
		{name: "capability added", vals: under("securityContext.capabilities.add", []any{"SYS_ADMIN"}), want: `securityContext.capabilities.add[0]: must be "NET_BIND_SERVICE"`},
		{name: "capabilities not dropped", vals: under("securityContext.capabilities.drop", []any{"NET_RAW"}), want: `securityContext.capabilities.drop: must include "ALL"`},
		{name: "container runAsUser 0", vals: under("securityContext.runAsUser", 0), want: "securityContext.runAsUser: must be at least 1"},
		{name: "pod runAsUser 0", vals: under("podSecurityContext.runAsUser", 0), want: "podSecurityContext.runAsUser: must be at least 1"},
		{name: "container runAsNonRoot false", vals: under("securityContext.runAsNonRoot", false), want: "securityContext.runAsNonRoot: must be true"},
		{name: "pod runAsNonRoot false", vals: under("podSecurityContext.runAsNonRoot", false), want: "podSecurityContext.runAsNonRoot: must be true"},
		{name: "runAsNonRoot removed", vals: under("podSecurityContext.runAsNonRoot", nil), want: "podSecurityContext.runAsNonRoot: is required, or securityContext.runAsNonRoot: is required"},
		{name: "seccomp profile removed", vals: under("podSecurityContext.seccompProfile", nil), want: "podSecurityContext.seccompProfile: is required, or securityContext.seccompProfile: is required"},
		{name: "seccomp Unconfined", vals: under("securityContext.seccompProfile.type", "Unconfined"), want: "securityContext.seccompProfile.type: must be one of"},
		{name: "apparmor Unconfined", vals: under("podSecurityContext.appArmorProfile.type", "Unconfined"), want: "podSecurityContext.appArmorProfile.type: must be one of"},
		{name: "procMount Unmasked", vals: under("securityContext.procMount", "Unmasked"), want: `securityContext.procMount: must be "Default"`},
		{name: "selinux type", vals: under("securityContext.seLinuxOptions.type", "spc_t"), want: "securityContext.seLinuxOptions.type: must be one of"},
		{name: "selinux user", vals: under("podSecurityContext.seLinuxOptions.user", "system_u"), want: `podSecurityContext.seLinuxOptions.user: must be ""`},
		{name: "unsafe sysctl", vals: under("podSecurityContext.sysctls", []any{map[string]any{"name": "kernel.msgmax", "value": "65536"}}), want: "podSecurityContext.sysctls[0].name: must be one of"},
	} {
		checkRefused(t, tc.name, tc.vals, false, tc.want, secretValue)
	}
}

// TestRenderAcceptsWhatPodSecurityAdmits: the forms the refusals above
// leave open still render.
func TestRenderAcceptsWhatPodSecurityAdmits(t *testing.T) {
	vals := map[string]any{
		"env": map[string]any{"GREETING": "hello, world\t!", "WORKERS": 4},
		"ingress": map[string]any{"annotations": map[string]any{
			"nginx.ingress.kubernetes.io/auth-tls-secret":      "client-ca",
			"nginx.ingress.kubernetes.io/permanent-redirect":   "https://shop.example.com/new?from=$request_uri",
			"traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
			"traefik.ingress.kubernetes.io/router.middlewares": "myapp-strip@kubernetescrd",
		}},
		"podSecurityContext": map[string]any{
			"runAsUser": 1000, "runAsGroup": 0, "fsGroup": 0,
			"seccompProfile":  map[string]any{"type": "Localhost", "localhostProfile": "profiles/app.json"},
			"appArmorProfile": map[string]any{"type": "RuntimeDefault"},
			"seLinuxOptions":  map[string]any{"type": "container_t", "level": "s0:c123,c456"},
			"sysctls":         []any{map[string]any{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}},
		},
		"securityContext": map[string]any{
			"runAsNonRoot": true, "runAsUser": 1000, "procMount": "Default",
			"capabilities": map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}},
		},
	}
	for _, prod := range []bool{false, true} {
		if _, err := renderOffline(t, prod, vals); err != nil {
			t.Errorf("production %v: %v", prod, err)
		}
	}
}

// TestSchemaRefusalsNameTheKeyNotTheValue: every kind of rule the schema
// has names the key and the rule; none quotes the value, which may be a
// secret (--set env.DB_PASSWORD=..., a values file).
func TestSchemaRefusalsNameTheKeyNotTheValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"pattern", under("ingress.tls.secretName", secretValue), "ingress.tls.secretName: must match ^("},
		{"pattern of a list item", under("imagePullSecrets", []any{secretValue}), "imagePullSecrets[0]: must match"},
		{"not", under("ingress.path", "/"+secretValue+"/../admin"), "ingress.path: must not match //|/\\.\\.?(/|$) (A Prefix path"},
		{"enum", under("image.pullPolicy", secretValue), `image.pullPolicy: must be one of "Always", "IfNotPresent", "Never"`},
		{"type", under("replicaCount", secretValue), "replicaCount: must be an integer"},
		{"type of a map", under("env", map[string]any{"TOKEN": map[string]any{"value": secretValue}}), "env.TOKEN: must be a boolean or a number or a string"},
		{"maximum", under("containerPort", 99999123), "containerPort: must be at most 65535"},
		{"maxLength", under("ingress.className", strings.Repeat(secretValue, 30)), "ingress.className: must be at most 253 characters"},
		{"line break", under("env", map[string]any{"DB_PASSWORD": secretValue + "\n"}), `env.DB_PASSWORD: must match ^[^\r\n\u0085\u2028\u2029]*$ (A string without a line break`},
		{"probe path", under("readinessProbe.path", secretValue), "readinessProbe.path: must match ^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$ (An HTTP GET path"},
		{"uniqueItems", under("imagePullSecrets", []any{"pull", "pull"}), "imagePullSecrets: must not repeat an item (items 0 and 1 are equal)"},
		{"unknown key", under("ingress.tls.secretname", secretValue), "ingress.tls.secretname: is not allowed (an unknown key)"},
		{"annotation key", annotation("helm.sh/resource-policy", secretValue), `ingress.annotations["helm.sh/resource-policy"]: is refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderOffline(t, false, tc.vals)
			if !release.IsUsage(err) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, secretValue) || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("err = %s\nwant one line naming %q, without the value", msg, tc.want)
			}
		})
	}
}

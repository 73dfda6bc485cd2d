package release

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestIsolationSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    map[string]string
		badKey  string // "" when the settings are good
		routers []string
		quota   map[corev1.ResourceName]string
	}{
		{name: "none: the built-in defaults", quota: map[corev1.ResourceName]string{
			"pods": "20", "requests.cpu": "4", "requests.memory": "8Gi", "limits.memory": "16Gi", "count/poddisruptionbudgets.policy": "1"}},
		{name: "set and removed", data: map[string]string{"quota.pods": " 5 ", "quota.limits.memory": "none", "router-namespaces": "traefik, ingress-nginx\nenvoy"},
			routers: []string{"traefik", "ingress-nginx", "envoy"},
			quota:   map[corev1.ResourceName]string{"pods": "5", "requests.cpu": "4", "requests.memory": "8Gi", "count/poddisruptionbudgets.policy": "1"}},
		{name: "other engineers' keys are not ours", data: map[string]string{"sizing.max-replicas": "x"}},
		{name: "no quantity", data: map[string]string{"quota.requests.cpu": "lots"}, badKey: "quota.requests.cpu"},
		{name: "negative", data: map[string]string{"quota.pods": "-1"}, badKey: "quota.pods"},
		{name: "unknown quota key", data: map[string]string{"quota.services": "3"}, badKey: "quota.services"},
		{name: "unknown limits key", data: map[string]string{"limits.min.cpu": "1m"}, badKey: "limits.min.cpu"},
		{name: "router no namespace name", data: map[string]string{"router-namespaces": "Ingress_Nginx"}, badKey: "router-namespaces"},
		{name: "a quota with no default for it", data: map[string]string{"quota.limits.cpu": "8"}, badKey: "quota.limits.cpu"},
		{name: "request default removed under a request quota", data: map[string]string{"limits.default-request.cpu": "none"}, badKey: "quota.requests.cpu"},
		{name: "request over limit", data: map[string]string{"limits.default-request.memory": "1Gi"}, badKey: "limits.default-request.memory"},
		{name: "default over max", data: map[string]string{"limits.max.memory": "128Mi"}, badKey: "limits.default.memory"},
		{name: "max gives the default", data: map[string]string{"quota.limits.cpu": "8", "limits.max.cpu": "2"},
			quota: map[corev1.ResourceName]string{"pods": "20", "requests.cpu": "4", "requests.memory": "8Gi", "limits.cpu": "8", "limits.memory": "16Gi", "count/poddisruptionbudgets.policy": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iso, err := parseIsolation(Settings{Found: true, Data: tc.data})
			if tc.badKey != "" {
				if err == nil || !IsUsage(err) || !strings.Contains(err.Error(), `"`+tc.badKey+`"`) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want a one-line usage error naming %s", err, tc.badKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(iso.routers, ",") != strings.Join(tc.routers, ",") {
				t.Errorf("routers %q, want %q", iso.routers, tc.routers)
			}
			if tc.quota == nil {
				return
			}
			if len(iso.quota) != len(tc.quota) {
				t.Errorf("quota %v, want %v", iso.quota, tc.quota)
			}
			for r, v := range tc.quota {
				if got := iso.quota[r]; got.Cmp(resource.MustParse(v)) != 0 {
					t.Errorf("quota %s = %s, want %s", r, got.String(), v)
				}
			}
		})
	}
}

// TestIsolationObjectsReadBackAsWritten: the LimitRange carries the
// apiserver's defaulting already, so an unchanged one is never rewritten.
func TestIsolationObjectsReadBackAsWritten(t *testing.T) {
	iso, err := parseIsolation(Settings{Data: map[string]string{"limits.max.cpu": "2", "router-namespaces": "traefik"}})
	if err != nil {
		t.Fatal(err)
	}
	np, _, lr := iso.objects("a-12345678")
	item := lr.Spec.Limits[0]
	if got := item.Default[corev1.ResourceCPU]; got.String() != "2" {
		t.Errorf("default cpu limit %s, want the maximum 2", got.String())
	}
	if got := item.DefaultRequest[corev1.ResourceMemory]; got.String() != "32Mi" {
		t.Errorf("default memory request %s, want 32Mi", got.String())
	}
	sel := np.Spec.Ingress[1].From[0].NamespaceSelector
	if len(sel.MatchExpressions) != 2 || sel.MatchExpressions[1].Values[0] != "traefik" || sel.MatchLabels != nil {
		t.Errorf("router selector %+v, want managed-by NotIn shipper and name In traefik", sel)
	}
}

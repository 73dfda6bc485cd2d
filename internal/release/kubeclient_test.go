package release

import (
	"reflect"
	"testing"

	"helm.sh/helm/v3/pkg/kube"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/resource"
)

// TestCreateWaves: an install's resources, in Helm's install order, are
// created kind after kind as Helm does, but a run of Service, workloads,
// Ingress and HTTPRoute at once; what comes before them (Secrets,
// ConfigMaps, RBAC) and after (ReferenceGrant, webhooks, custom
// resources) keeps its own waves.
func TestCreateWaves(t *testing.T) {
	kinds := []string{"ServiceAccount", "Secret", "Secret", "ConfigMap", "Service", "Deployment", "Ingress",
		"HTTPRoute", "ReferenceGrant", "MutatingWebhookConfiguration", "Widget", "Widget"}
	var list kube.ResourceList
	for _, k := range kinds {
		u := &unstructured.Unstructured{}
		u.SetKind(k)
		list = append(list, &resource.Info{Object: u})
	}
	var got [][]string
	for _, w := range createWaves(list) {
		var ks []string
		for _, info := range w {
			ks = append(ks, info.Object.GetObjectKind().GroupVersionKind().Kind)
		}
		got = append(got, ks)
	}
	want := [][]string{{"ServiceAccount"}, {"Secret", "Secret"}, {"ConfigMap"},
		{"Service", "Deployment", "Ingress", "HTTPRoute"}, {"ReferenceGrant"}, {"MutatingWebhookConfiguration"}, {"Widget", "Widget"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waves %v, want %v", got, want)
	}
}

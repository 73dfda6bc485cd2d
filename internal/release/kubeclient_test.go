package release

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/resource"
)

// TestCreateWaves: an install's resources, in Helm's install order, are
// created kind after kind as Helm does, but the Service, the routes to it
// and the workloads whose pods take no service links at once; a
// workload whose pods may take them keeps its wave after the Service
// (Kubernetes gives <SERVICE>_SERVICE_HOST only to pods created after
// it), and what comes before them (Secrets, ConfigMaps, RBAC) and after
// (HPAs, ReferenceGrant, webhooks, custom resources) keeps its own waves.
func TestCreateWaves(t *testing.T) {
	noLinks := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"enableServiceLinks": false}}}}
	links := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{}}}}
	obj := func(kind string, content map[string]any) *resource.Info {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		for k, v := range content {
			u.Object[k] = v
		}
		u.SetKind(kind)
		u.SetName(kind)
		return &resource.Info{Object: u}
	}
	for _, c := range []struct {
		name string
		list []*resource.Info
		want [][]string
	}{
		{"preview chart", []*resource.Info{obj("ServiceAccount", nil), obj("Secret", nil), obj("Secret", nil), obj("ConfigMap", nil),
			obj("Service", nil), obj("Deployment", noLinks), obj("HorizontalPodAutoscaler", nil), obj("Ingress", nil),
			obj("HTTPRoute", nil), obj("ReferenceGrant", nil), obj("MutatingWebhookConfiguration", nil), obj("Widget", nil), obj("Widget", nil)},
			[][]string{{"ServiceAccount"}, {"Secret", "Secret"}, {"ConfigMap"}, {"Service", "Deployment"},
				{"HorizontalPodAutoscaler"}, {"Ingress", "HTTPRoute"}, {"ReferenceGrant"}, {"MutatingWebhookConfiguration"}, {"Widget", "Widget"}}},
		{"service links", []*resource.Info{obj("Service", nil), obj("Deployment", links), obj("Ingress", nil)},
			[][]string{{"Service"}, {"Deployment"}, {"Ingress"}}},
		{"one kind, links or not", []*resource.Info{obj("Service", nil), obj("Deployment", noLinks), obj("Deployment", links), obj("Ingress", nil)},
			[][]string{{"Service", "Deployment"}, {"Deployment"}, {"Ingress"}}},
		{"links first", []*resource.Info{obj("Service", nil), obj("Deployment", links), obj("Deployment", noLinks), obj("StatefulSet", noLinks)},
			[][]string{{"Service"}, {"Deployment", "Deployment"}, {"StatefulSet"}}},
	} {
		var got [][]string
		for _, w := range createWaves(c.list) {
			var ks []string
			for _, info := range w {
				ks = append(ks, info.Object.GetObjectKind().GroupVersionKind().Kind)
			}
			got = append(got, ks)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: waves %v, want %v", c.name, got, c.want)
		}
	}
}

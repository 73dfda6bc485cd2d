package release_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestManifestsOlderThanIsolationDeployAsBefore: a shipper of this version
// on a cluster whose deploy/rbac predates the isolation objects (no right
// to them, no settings ConfigMap, no policy that wants them) deploys as
// before, without them, and says so: the binaries can be upgraded before
// the manifests.
func TestManifestsOlderThanIsolationDeployAsBefore(t *testing.T) {
	f := newDeployFixture(t)
	rc, err := f.env.NewIdentity(context.Background(), testenv.Identity{
		Namespace: f.env.Namespace(t), Name: "old-manifests",
		ClusterRules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "secrets", "services", "pods"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"*"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	cfg, err := release.NewConfiguration(rc, release.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	d := release.NewDeploy(cfg)
	d.Hosts, d.Wait, d.Timeout = release.Hosts{Domain: "example.com"}, false, 60*time.Second
	if _, err := d.Run(context.Background(), names(t, f.app, shaA), f.image); err != nil {
		t.Fatalf("deploy with the rights of deploy/rbac before isolation: %v", err)
	}
	ns := names(t, f.app, shaA).Namespace
	if _, err := f.cs.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), release.IsolationPolicy, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("NetworkPolicy in %s: err = %v, want none", ns, err)
	}
	if !strings.Contains(logs.String(), "namespace not isolated") || !strings.Contains(logs.String(), "deploy/rbac") {
		t.Errorf("the deploy did not say its namespace is not isolated:\n%s", logs.String())
	}
}

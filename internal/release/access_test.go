package release_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// TestBindingAwaitedForATokenWithLeasesEverywhere: a token with
// shipper's cluster-wide rules and, from some other grant, Leases in
// every namespace still needs the namespace role's binding for what
// comes right after it (the ResourceQuota and LimitRange of a new
// namespace, its Secrets): the binding's wait is skipped only for a token
// that may do everything there. Every new commit deploys; one that met an
// authorizer that had not seen the binding yet failed with "forbidden".
func TestBindingAwaitedForATokenWithLeasesEverywhere(t *testing.T) {
	f := newDeployFixture(t)
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: release.NamespaceRole},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
	}
	if _, err := f.cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	} else if err == nil {
		t.Cleanup(func() {
			_ = f.cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
	}
	rc, err := f.env.NewIdentity(ctx, testenv.Identity{
		Namespace: f.env.Namespace(t), Name: "leases-everywhere",
		ClusterRules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "create", "delete"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}, ResourceNames: []string{release.NamespaceRole}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := release.NewConfiguration(rc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		d := release.NewDeploy(cfg)
		d.Hosts, d.Wait, d.Timeout = release.Hosts{Domain: "example.com"}, false, 60*time.Second
		d.Credentials = &release.RegistryCredentials{Username: f.env.Registry.Username, Password: f.env.Registry.Password}
		sha := fmt.Sprintf("c%07d%032d", i, i)
		n := names(t, f.app, sha)
		if _, err := d.Run(ctx, n, f.image); err != nil {
			t.Errorf("deploy of new commit %d with Leases everywhere: %v", i, err)
			continue
		}
		for what, get := range map[string]func() error{
			"ResourceQuota": func() error {
				_, err := f.cs.CoreV1().ResourceQuotas(n.Namespace).Get(ctx, release.IsolationQuota, metav1.GetOptions{})
				return err
			},
			"NetworkPolicy": func() error {
				_, err := f.cs.NetworkingV1().NetworkPolicies(n.Namespace).Get(ctx, release.IsolationPolicy, metav1.GetOptions{})
				return err
			},
		} {
			if err := get(); err != nil {
				t.Errorf("new commit %d: %s: %v, want made (a write the authorizer refused before it saw the binding is skipped as on old manifests)", i, what, err)
			}
		}
	}
}

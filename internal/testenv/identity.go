package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Identity describes a least-privileged ServiceAccount: exactly the given
// rules in its own namespace, and optionally cluster-wide ones.
type Identity struct {
	Namespace string
	Name      string
	// Rules are granted by a Role and RoleBinding in Namespace.
	Rules []rbacv1.PolicyRule
	// ClusterRules, when set, are granted by a ClusterRole and
	// ClusterRoleBinding named "<Namespace>:<Name>".
	ClusterRules []rbacv1.PolicyRule
}

// NewIdentity creates the ServiceAccount and its RBAC objects, mints a token
// for it through the TokenRequest API, and returns a rest.Config that
// authenticates with that token: what a CI job's credentials look like.
func (e *Env) NewIdentity(ctx context.Context, id Identity) (*rest.Config, error) {
	cs, err := e.AdminClient()
	if err != nil {
		return nil, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: id.Name, Namespace: id.Namespace}}
	if _, err := cs.CoreV1().ServiceAccounts(id.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating ServiceAccount %s/%s: %w", id.Namespace, id.Name, err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: id.Name, Namespace: id.Namespace}}
	if len(id.Rules) > 0 {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: id.Name, Namespace: id.Namespace}, Rules: id.Rules}
		if _, err := cs.RbacV1().Roles(id.Namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating Role %s/%s: %w", id.Namespace, id.Name, err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: id.Name, Namespace: id.Namespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: id.Name},
			Subjects:   subject,
		}
		if _, err := cs.RbacV1().RoleBindings(id.Namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating RoleBinding %s/%s: %w", id.Namespace, id.Name, err)
		}
	}
	if len(id.ClusterRules) > 0 {
		name := id.Namespace + ":" + id.Name
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: id.ClusterRules}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating ClusterRole %s: %w", name, err)
		}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   subject,
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating ClusterRoleBinding %s: %w", name, err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	tr, err = cs.CoreV1().ServiceAccounts(id.Namespace).CreateToken(ctx, id.Name, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for %s/%s: %w", id.Namespace, id.Name, err)
	}
	cfg := rest.AnonymousClientConfig(e.admin)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// Apply creates or updates, as the admin with server-side apply, the
// objects of dir the way `kubectl apply -k dir` does: through kustomize's
// own engine (krusty, which kubectl embeds) when dir holds a
// kustomization.yaml, else every .yaml file of dir in name order.
func (e *Env) Apply(ctx context.Context, dir string) error {
	docs, err := manifests(dir)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(e.admin)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(e.admin)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dec := yamlutil.NewYAMLOrJSONDecoder(bytes.NewReader(docs), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", dir, gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := ri.Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: "shipper-tests", Force: true}); err != nil {
			return fmt.Errorf("applying %s %s from %s: %w", gvk.Kind, obj.GetName(), dir, err)
		}
	}
}

// manifests is the YAML stream of dir's objects.
func manifests(dir string) ([]byte, error) {
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err == nil {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
		}
		return res.AsYaml()
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var all bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		all.Write(data)
		all.WriteString("\n---\n")
	}
	return all.Bytes(), nil
}

// Token mints a token for the existing ServiceAccount namespace/name and
// returns a rest.Config that authenticates with it.
func (e *Env) Token(ctx context.Context, namespace, name string) (*rest.Config, error) {
	cs, err := e.AdminClient()
	if err != nil {
		return nil, err
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	tr, err = cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	cfg := rest.AnonymousClientConfig(e.admin)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

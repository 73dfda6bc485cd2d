package release

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/scheme"
	restfake "k8s.io/client-go/rest/fake"

	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// asideFixture is a release's driver writing aside, over a fake clientset
// whose Secret creates wait for release (closed: answered at once).
type asideFixture struct {
	cs      *fake.Clientset
	d       *knownDriver
	a       *recordAside
	rel     *release.Release
	key     string
	release chan struct{}
}

func newAsideFixture(t *testing.T, createErr error) *asideFixture {
	t.Helper()
	f := &asideFixture{cs: fake.NewClientset(), rel: recordFixture("kind: Service\n"), release: make(chan struct{})}
	f.rel.Version, f.rel.Info.Status = 1, release.StatusPendingInstall
	f.key = releaseKey(f.rel.Name, f.rel.Version)
	failed := false
	f.cs.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-f.release
		if createErr != nil && !failed {
			failed = true
			return true, nil, createErr
		}
		return false, nil, nil
	})
	w := &recordWriter{secrets: f.cs.CoreV1().Secrets(f.rel.Namespace)}
	f.a = &recordAside{write: w, namespace: f.rel.Namespace}
	f.d = &knownDriver{Driver: driver.NewSecrets(f.cs.CoreV1().Secrets(f.rel.Namespace)), write: w, aside: f.a}
	return f
}

// stored is the status label of the record in the fake, "" when there is
// none.
func (f *asideFixture) stored(t *testing.T) string {
	t.Helper()
	s, err := f.cs.Tracker().Get(secretsResource, f.rel.Namespace, f.key)
	if err != nil {
		return ""
	}
	return s.(metav1.Object).GetLabels()["status"]
}

var secretsResource = corev1.SchemeGroupVersion.WithResource("secrets")

// info is a resource of the given scope in namespace ns.
func info(name, ns string, scope meta.RESTScope) *resource.Info {
	return &resource.Info{Name: name, Namespace: ns, Mapping: &meta.RESTMapping{Scope: scope}}
}

// TestInstallRecordWrittenBesideItsResources: Helm's Create of an
// install's first record returns at once; the record is sent when the
// resources are, and the outcome's write waits for it and lands over it.
func TestInstallRecordWrittenBesideItsResources(t *testing.T) {
	f := newAsideFixture(t, nil)
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	// Helm changes the release after its Create: the record holds it as
	// it was then.
	f.rel.Info.Description = "changed after the create"
	if err := f.a.beside(kube.ResourceList{info("web", f.rel.Namespace, meta.RESTScopeNamespace)}); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t); got != "" {
		t.Fatalf("record stored before its write was let through: %q", got)
	}
	close(f.release)
	key, err := f.a.settle()
	if key != f.key || err != nil {
		t.Fatalf("settle = %q, %v; want %q, nil", key, err, f.key)
	}
	pending, err := f.d.Driver.Get(f.key)
	if err != nil {
		t.Fatal(err)
	}
	if pending.Info.Status != release.StatusPendingInstall || pending.Info.Description == "changed after the create" {
		t.Errorf("pending record = %s %q, want pending-install as drafted", pending.Info.Status, pending.Info.Description)
	}
	f.rel.SetStatus(release.StatusDeployed, "Install complete")
	if err := f.d.Update(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t); got != "deployed" {
		t.Errorf("record after the outcome = %q, want deployed", got)
	}
}

// TestInstallRecordBeforeResourcesOutsideTheNamespace: a resource outside
// the release's namespace (another namespace, or cluster-scoped: a delete
// of the namespace would leave it) is created only after its record is
// stored, as in Helm's order; a record that fails stops them.
func TestInstallRecordBeforeResourcesOutsideTheNamespace(t *testing.T) {
	for name, outside := range map[string]*resource.Info{
		"cluster-scoped":    info("reader", "", meta.RESTScopeRoot),
		"another namespace": info("web", "elsewhere", meta.RESTScopeNamespace),
	} {
		t.Run(name, func(t *testing.T) {
			f := newAsideFixture(t, nil)
			close(f.release)
			if err := f.d.Create(f.key, f.rel); err != nil {
				t.Fatal(err)
			}
			if err := f.a.beside(kube.ResourceList{info("web", f.rel.Namespace, meta.RESTScopeNamespace), outside}); err != nil {
				t.Fatal(err)
			}
			if got := f.stored(t); got != "pending-install" {
				t.Errorf("record when the resources go out = %q, want pending-install", got)
			}
		})
	}
	f := newAsideFixture(t, errors.New("refused"))
	close(f.release)
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if err := f.a.beside(kube.ResourceList{info("reader", "", meta.RESTScopeRoot)}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("beside with a failing record = %v, want its error", err)
	}
}

// TestInstallOutcomeCreatedWhenItsFirstRecordFailed: when the record sent
// beside the resources is refused, the outcome is created in its place.
func TestInstallOutcomeCreatedWhenItsFirstRecordFailed(t *testing.T) {
	f := newAsideFixture(t, errors.New("etcdserver: request timed out"))
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if err := f.a.beside(kube.ResourceList{info("web", f.rel.Namespace, meta.RESTScopeNamespace)}); err != nil {
		t.Fatal(err)
	}
	close(f.release)
	f.rel.SetStatus(release.StatusDeployed, "Install complete")
	if err := f.d.Update(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t); got != "deployed" {
		t.Errorf("record = %q, want deployed", got)
	}
	f.d.mu.Lock()
	w := f.d.wrote[f.key]
	f.d.mu.Unlock()
	if w.err != nil || w.status != release.StatusDeployed {
		t.Errorf("remembered write = %v %s, want the outcome recorded", w.err, w.status)
	}
}

// TestInstallRecordSentWhenNoResourcesCame: an install that stops before
// its resources (or has none) still stores its first record, when the
// install is settled.
func TestInstallRecordSentWhenNoResourcesCame(t *testing.T) {
	f := newAsideFixture(t, nil)
	close(f.release)
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t); got != "" {
		t.Fatalf("record stored at Create: %q", got)
	}
	if key, err := f.a.settle(); key != f.key || err != nil {
		t.Fatalf("settle = %q, %v", key, err)
	}
	if got := f.stored(t); got != "pending-install" {
		t.Errorf("record after settle = %q, want pending-install", got)
	}
}

// TestLargeInstallRecordKeepsHelmsOrder: a record above
// recordCompactAbove is written at Helm's Create, before any resource.
func TestLargeInstallRecordKeepsHelmsOrder(t *testing.T) {
	f := newAsideFixture(t, nil)
	close(f.release)
	f.rel.Manifest = strings.Repeat("kind: ConfigMap\n", recordCompactAbove/16+1)
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(t); got != "pending-install" {
		t.Errorf("large record at Create = %q, want pending-install stored", got)
	}
	if key, _ := f.a.settle(); key != "" {
		t.Errorf("large record written aside (%q)", key)
	}
}

// TestAdoptingInstallWritesItsRecordFirst: in a fresh namespace, Helm's
// install that adopts an object outside it, left annotated for the release
// (existingResourceConflict), creates its resources through
// KubeClient.Update, not Create: the record held is stored before them, as
// in Helm's order, or a kill in between would leave a new cluster-scoped
// object that no record (and no namespace deletion) removes. Found by a
// hostile review.
func TestAdoptingInstallWritesItsRecordFirst(t *testing.T) {
	f := newAsideFixture(t, nil)
	close(f.release)
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	var storedAtCreate atomic.Value
	codec := scheme.Codecs.LegacyCodec(rbacv1.SchemeGroupVersion)
	rc := &restfake.RESTClient{
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         rbacv1.SchemeGroupVersion,
		Client: restfake.CreateHTTPClient(func(req *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": []string{runtime.ContentTypeJSON}}
			switch req.Method {
			case http.MethodGet:
				st := &metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound, Details: &metav1.StatusDetails{}}
				return &http.Response{StatusCode: 404, Header: h, Body: io.NopCloser(bytes.NewReader([]byte(runtime.EncodeOrDie(codec, st))))}, nil
			default:
				storedAtCreate.Store(f.stored(t))
				body, _ := io.ReadAll(req.Body)
				return &http.Response{StatusCode: 201, Header: h, Body: io.NopCloser(bytes.NewReader(body))}, nil
			}
		}),
	}
	cr := &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: metav1.ObjectMeta{Name: "new-reader"}}
	target := kube.ResourceList{&resource.Info{Client: rc, Name: "new-reader", Object: cr, Mapping: &meta.RESTMapping{
		Resource: rbacv1.SchemeGroupVersion.WithResource("clusterroles"), GroupVersionKind: rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), Scope: meta.RESTScopeRoot}}}
	c := reachedClient{Client: &kube.Client{Log: func(string, ...any) {}}, aside: f.a}
	if _, err := c.Update(kube.ResourceList{}, target, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := storedAtCreate.Load().(string); got != "pending-install" {
		t.Errorf("record when the cluster-scoped ClusterRole was created = %q, want pending-install (Helm's order)", got)
	}
}

// TestRefusedInstallRecordUndoesItsResources: when the record written
// beside the resources is refused, and the outcome cannot be created in
// its place either (an admission policy on Secrets), what Helm created
// beside it is deleted and the install fails with the refusal: the
// cluster as Helm's order, record first, would have left it. (Before, the
// refusal was dropped by Helm and the deploy failed 15 s later with
// "release: not found", its pods running. Found by a hostile review.)
func TestRefusedInstallRecordUndoesItsResources(t *testing.T) {
	f := newAsideFixture(t, nil)
	close(f.release)
	f.cs.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "", errors.New("denied by policy no-secrets"))
	})
	kc := &deletingClient{}
	r := &helmRelease{cfg: &action.Configuration{Releases: storage.Init(f.d), KubeClient: kc}, namespace: f.rel.Namespace, name: f.rel.Name}
	if err := f.d.Create(f.key, f.rel); err != nil {
		t.Fatal(err)
	}
	if err := f.a.beside(kube.ResourceList{info("web", f.rel.Namespace, meta.RESTScopeNamespace)}); err != nil {
		t.Fatalf("beside: %v", err)
	}
	f.rel.SetStatus(release.StatusDeployed, "Install complete")
	if err := f.d.Update(f.key, f.rel); err == nil {
		t.Fatal("the outcome's create was not refused")
	}
	_, aside := f.a.settle()
	if aside == nil || r.recorded(f.rel) {
		t.Fatalf("settle = %v, recorded = %v: want the refusal, and no record", aside, r.recorded(f.rel))
	}
	err := r.unrecorded(f.rel, aside)
	if err == nil || !strings.Contains(err.Error(), "denied by policy") {
		t.Errorf("unrecorded = %v, want the record's refusal", err)
	}
	if kc.built != f.rel.Manifest || kc.deleted != 1 {
		t.Errorf("deleted %d resource lists built from %q, want the release's manifest's, once", kc.deleted, kc.built)
	}
}

// deletingClient is a kube client that records what it is asked to build
// and delete.
type deletingClient struct {
	kubefake.PrintingKubeClient
	built   string
	deleted int
}

func (c *deletingClient) Build(r io.Reader, _ bool) (kube.ResourceList, error) {
	b, err := io.ReadAll(r)
	c.built = string(b)
	return kube.ResourceList{info("web", "", meta.RESTScopeNamespace)}, err
}

func (c *deletingClient) Delete(l kube.ResourceList) (*kube.Result, []error) {
	c.deleted++
	return &kube.Result{Deleted: l}, nil
}

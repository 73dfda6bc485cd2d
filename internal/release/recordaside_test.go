package release

import (
	"errors"
	"strings"
	"testing"

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

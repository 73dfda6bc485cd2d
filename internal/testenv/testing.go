package testenv

import (
	"context"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Env shared by the tests of one test binary.
var shared struct {
	once sync.Once
	env  *Env
	err  error
}

// Main runs the tests of a package, then the cleanups, then stops the
// shared Env. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if shared.env != nil {
		shared.env.Stop()
	}
	stopSharedPostgres()
	os.Exit(code)
}

// Get returns the Env shared by the package's tests, starting it on first
// use. A package that calls Get must call Main from its TestMain. Get skips
// the test under -short, which runs unit tests only.
func Get(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the control plane (run without -short)")
	}
	shared.once.Do(func() {
		shared.env, shared.err = Start(context.Background(), Options{})
	})
	if shared.err != nil {
		t.Fatalf("starting the test environment: %v", shared.err)
	}
	return shared.env
}

// Namespace creates a namespace for t alone, named after the test, and
// deletes it when t ends.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	cs, err := e.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "test-",
		Labels:       map[string]string{"testenv.shipper.dev/test": labelValue(t.Name())},
	}}
	ns, err = cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		// Without a controller manager the namespace stays Terminating with
		// its objects; the Env, etcd data included, is thrown away anyway.
		err := cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
		if err != nil {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// labelValue fits a test name into a label value (63 characters of
// [A-Za-z0-9_.-]).
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	for len(b) > 0 && !isAlnum(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && !isAlnum(b[0]) {
		b = b[1:]
	}
	return string(b)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

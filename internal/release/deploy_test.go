package release_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	helmaction "helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

const testSHA = "7c77eb36a1b2c3d4e5f60718293a4b5c6d7e8f90"

// deployFixture is a Deploy against the shared control plane for a fresh app.
type deployFixture struct {
	env   *testenv.Env
	cs    kubernetes.Interface
	cfg   *release.Configuration
	logs  *logBuffer
	app   string
	image string
}

func newDeployFixture(t *testing.T) *deployFixture {
	t.Helper()
	env := testenv.Get(t)
	cs, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	cfg, logs := newConfig(t, env)
	f := &deployFixture{env: env, cs: cs, cfg: cfg, logs: logs, app: uniqueApp("app"),
		image: env.Registry.Repository("group/app") + ":7c77eb36"}
	cleanupApp(t, cs, f.app)
	return f
}

func (f *deployFixture) deploy(t *testing.T, sha string, mutate ...func(*release.Deploy)) (*release.Commit, error) {
	t.Helper()
	d := release.NewDeploy(f.cfg)
	d.Hosts = release.Hosts{Domain: "preview.example.com"}
	d.Credentials = &release.RegistryCredentials{Username: f.env.Registry.Username, Password: f.env.Registry.Password}
	d.Timeout = 30 * time.Second
	for _, m := range mutate {
		m(d)
	}
	n, err := release.NewNames(f.app, sha)
	if err != nil {
		return nil, err
	}
	return d.Run(context.Background(), n, f.image)
}

func (f *deployFixture) helm(t *testing.T, ns string) *helmaction.Configuration {
	t.Helper()
	var cfg helmaction.Configuration
	if err := cfg.Init(restGetterFor(f.env), ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func TestDeployCreatesEverythingAndConverges(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)

	got, err := f.deploy(t, testSHA)
	if err != nil {
		t.Fatalf("deploy: %v\nlog:\n%s", err, f.logs)
	}
	if got.Release != ns || got.Namespace != ns || got.Revision != 1 || got.Status != "deployed" {
		t.Errorf("deploy = %+v, want release/namespace %s, revision 1, deployed", got, ns)
	}
	wantURL := "https://" + ns + ".preview.example.com"
	if got.URL != wantURL {
		t.Errorf("URL = %q, want %q", got.URL, wantURL)
	}

	ctx := context.Background()
	nsObj, err := f.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		release.LabelManagedBy: "shipper", release.LabelApp: f.app, release.LabelSHA: "7c77eb36",
		release.LabelRole: "preview", "pod-security.kubernetes.io/enforce": "restricted",
	} {
		if nsObj.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q", k, nsObj.Labels[k], v)
		}
	}

	dep, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != f.image {
		t.Errorf("image = %q, want %q", c.Image, f.image)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["APP_VERSION"] != "7c77eb36" || env["COMMIT_SHA"] != testSHA {
		t.Errorf("env APP_VERSION=%q COMMIT_SHA=%q, want the short and full SHA", env["APP_VERSION"], env["COMMIT_SHA"])
	}
	if ps := dep.Spec.Template.Spec.ImagePullSecrets; len(ps) != 1 || ps[0].Name != release.PullSecretName {
		t.Errorf("imagePullSecrets = %v, want [%s]", ps, release.PullSecretName)
	}
	if _, err := f.cs.CoreV1().Services(ns).Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("service: %v", err)
	}
	ing, err := f.cs.NetworkingV1().Ingresses(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ing.Spec.Rules[0].Host; h != ns+".preview.example.com" {
		t.Errorf("ingress host = %q", h)
	}

	sec, err := f.cs.CoreV1().Secrets(ns).Get(ctx, release.PullSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var dc struct {
		Auths map[string]struct{ Username, Password string }
	}
	if err := json.Unmarshal(sec.Data[corev1.DockerConfigJsonKey], &dc); err != nil {
		t.Fatal(err)
	}
	if sec.Type != corev1.SecretTypeDockerConfigJson || dc.Auths[f.env.Registry.Host].Username != f.env.Registry.Username ||
		dc.Auths[f.env.Registry.Host].Password != f.env.Registry.Password {
		t.Errorf("pull secret type %s auths for %v, want dockerconfigjson for %s", sec.Type, keys(dc.Auths), f.env.Registry.Host)
	}

	// A re-run of the same CI job converges: one more revision, same objects.
	again, err := f.deploy(t, testSHA)
	if err != nil {
		t.Fatalf("second deploy: %v", err)
	}
	if again.Revision != 2 || again.Status != "deployed" || again.URL != got.URL {
		t.Errorf("second deploy = %+v, want revision 2 deployed at the same URL", again)
	}
	if strings.Contains(f.logs.String(), f.env.Registry.Password) {
		t.Error("the registry password reached the log")
	}
}

func TestDeployRejectsBadInputWithoutChangingTheCluster(t *testing.T) {
	f := newDeployFixture(t)
	for _, tc := range []struct {
		name, sha string
		mutate    func(*release.Deploy)
		image     string
		want      string
	}{
		{name: "bad sha", sha: "xyz", want: `invalid commit SHA "xyz"`},
		{name: "bad image", sha: testSHA, image: "no-tag-here", want: `invalid image "no-tag-here"`},
		{name: "bad domain", sha: testSHA, mutate: func(d *release.Deploy) { d.Hosts.Domain = "Not A Domain" }, want: `invalid domain "Not A Domain"`},
		{name: "bad values", sha: testSHA, mutate: func(d *release.Deploy) { d.Values = map[string]any{"replicaCount": -1} }, want: "replicaCount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.image != "" {
				defer func(old string) { f.image = old }(f.image)
				f.image = tc.image
			}
			var muts []func(*release.Deploy)
			if tc.mutate != nil {
				muts = append(muts, tc.mutate)
			}
			_, err := f.deploy(t, tc.sha, muts...)
			if !release.IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tc.want)
			}
			nss, err := f.cs.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: release.LabelApp + "=" + f.app})
			if err != nil {
				t.Fatal(err)
			}
			if len(nss.Items) != 0 {
				t.Errorf("bad input created namespace %s", nss.Items[0].Name)
			}
		})
	}
}

func TestDeployDiagnosesFailedRolloutAndNextDeployRepairs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		out        outcome
		wantReason string
		wantMsg    string
		neverRan   bool // the container never started: no logs to ask for
	}{
		{"image pull", rolloutImagePullBackOff, "ImagePullBackOff", "Back-off pulling image", true},
		{"crash loop", rolloutCrashLoop, "CrashLoopBackOff", "last exit code 2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDeployFixture(t)
			ns := f.app + "-7c77eb36"
			stop := simulate(t, f.cs, ns, ns, tc.out)

			start := time.Now()
			_, err := f.deploy(t, testSHA)
			var re *release.RolloutError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RolloutError", err)
			}
			if re.Reason != tc.wantReason || !strings.HasPrefix(re.Pod, ns+"-") || !strings.Contains(re.Message, tc.wantMsg) || re.TimedOut {
				t.Errorf("RolloutError = %+v, want pod %s-..., reason %s, message containing %q, not a timeout", re, ns, tc.wantReason, tc.wantMsg)
			}
			if len(re.Logs) == 0 && !re.NeverStarted {
				t.Errorf("no log lines (nor why there are none) in %+v", re)
			}
			if re.NeverStarted != tc.neverRan || tc.neverRan && len(re.Logs) > 0 {
				t.Errorf("NeverStarted = %t with logs %q; want %t", re.NeverStarted, re.Logs, tc.neverRan)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("failure reported after %v, want within seconds (timeout is 30s)", took)
			}
			for _, s := range []string{ns, tc.wantReason} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			last, err := f.helm(t, ns).Releases.Last(ns)
			if err != nil {
				t.Fatal(err)
			}
			if last.Info.Status != helmrelease.StatusFailed {
				t.Errorf("release status after the failed rollout = %s, want failed", last.Info.Status)
			}

			// The fix lands (here: the pods come up); the next deploy of the
			// same commit repairs the release.
			stop()
			_ = f.cs.CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{})
			simulate(t, f.cs, ns, ns, rolloutReady)
			got, err := f.deploy(t, testSHA)
			if err != nil {
				t.Fatalf("repairing deploy: %v", err)
			}
			if got.Status != "deployed" || got.Revision != 2 {
				t.Errorf("repairing deploy = %s revision %d, want deployed revision 2", got.Status, got.Revision)
			}
		})
	}
}

// TestDeployGivesAPullRefusalTimeToHeal: a refused pull can be the kubelet
// asking before the Node authorizer lets it read the pull secret; the
// retry after the back-off succeeds. So it is reported only once it has
// lasted the grace period, not at once and not at the timeout.
func TestDeployGivesAPullRefusalTimeToHeal(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutPullUnauthorized)
	start := time.Now()
	_, err := f.deploy(t, testSHA, func(d *release.Deploy) { d.Timeout = 90 * time.Second })
	took := time.Since(start)
	var re *release.RolloutError
	if !errors.As(err, &re) || re.Reason != "ErrImagePull" || re.TimedOut || !strings.Contains(re.Message, "401 Unauthorized") {
		t.Fatalf("err = %v, want an ErrImagePull RolloutError before the timeout", err)
	}
	// An unauthorized pull has the longer grace (45 s: the kubelet's retries
	// after 10 s and 20 s); a wrong credential is still reported before the
	// timeout.
	if took < 44*time.Second || took > 70*time.Second {
		t.Errorf("a persistent pull refusal was reported after %v, want after the 45 s grace and well before the 90 s timeout", took)
	}
}

// TestDeployTimeoutNamesTheLastProblem: a pod that cannot be scheduled
// may yet be (an autoscaler adds a node), so Deploy waits for the timeout,
// then says why.
func TestDeployTimeoutNamesTheLastProblem(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutUnschedulable)
	_, err := f.deploy(t, testSHA, func(d *release.Deploy) { d.Timeout = 3 * time.Second })
	var re *release.RolloutError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RolloutError", err)
	}
	if !re.TimedOut || re.Reason != "Unschedulable" || !strings.Contains(re.Message, "Insufficient cpu") || !strings.HasPrefix(re.Pod, ns) {
		t.Errorf("RolloutError = %+v, want a timeout naming the unschedulable pod", re)
	}
	if !strings.Contains(err.Error(), "before the timeout") {
		t.Errorf("error %q does not say it timed out", err)
	}
}

// TestDeployRepairsPendingRelease plants what a process killed mid-upgrade
// leaves behind; the next deploy repairs it instead of failing with
// "another operation is in progress".
func TestDeployRepairsPendingRelease(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)
	if _, err := f.deploy(t, testSHA); err != nil {
		t.Fatal(err)
	}
	hc := f.helm(t, ns)
	last, err := hc.Releases.Last(ns)
	if err != nil {
		t.Fatal(err)
	}
	pending := *last
	pending.Version = last.Version + 1
	info := *last.Info
	pending.Info = &info
	pending.SetStatus(helmrelease.StatusPendingUpgrade, "Preparing upgrade")
	if err := hc.Releases.Create(&pending); err != nil {
		t.Fatal(err)
	}
	// Helm alone refuses to go on.
	up := helmaction.NewUpgrade(hc)
	if _, err := up.Run(ns, last.Chart, last.Config); err == nil || !strings.Contains(err.Error(), "another operation") {
		t.Fatalf("helm upgrade over a pending release: err = %v, want Helm's 'another operation' refusal", err)
	}

	got, err := f.deploy(t, testSHA)
	if err != nil {
		t.Fatalf("deploy over a pending release: %v", err)
	}
	if got.Revision != pending.Version+1 || got.Status != "deployed" {
		t.Errorf("deploy = revision %d %s, want revision %d deployed", got.Revision, got.Status, pending.Version+1)
	}
	if !strings.Contains(f.logs.String(), "repaired a release left pending") {
		t.Errorf("the repair was not logged:\n%s", f.logs)
	}
	hist, err := hc.Releases.History(ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range hist {
		if r.Info.Status.IsPending() {
			t.Errorf("revision %d still %s", r.Version, r.Info.Status)
		}
	}
}

// TestDeployAdoptsResourcesLeftWithoutARecord: a new commit's first record
// is written beside its resources (recordaside.go), so a deploy killed in
// that moment leaves them with no record. The next deploy of the commit
// installs over them (Helm adopts what carries its release's annotations)
// and records it; the objects are kept, not made again.
func TestDeployAdoptsResourcesLeftWithoutARecord(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)
	if _, err := f.deploy(t, testSHA); err != nil {
		t.Fatal(err)
	}
	// Helm's existence check, a GET of each resource, took the answers of
	// GETs sent ahead at once (checksAhead): 404s on a fresh install.
	rel, err := f.helm(t, ns).Releases.Last(ns)
	if err != nil {
		t.Fatal(err)
	}
	resources := int64(len(releaseutil.SplitManifests(rel.Manifest)))
	if got := release.ChecksTakenAhead(f.cfg); got != resources {
		t.Errorf("the fresh install's existence checks took %d answers sent ahead, want one for each of its %d resources", got, resources)
	}
	ctx := context.Background()
	before, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	records := metav1.ListOptions{LabelSelector: "owner=helm,name=" + ns}
	if err := f.cs.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, records); err != nil {
		t.Fatal(err)
	}
	got, err := f.deploy(t, testSHA)
	if err != nil {
		t.Fatalf("deploy over resources without a record: %v", err)
	}
	if got.Revision != 1 || got.Status != "deployed" {
		t.Errorf("deploy = revision %d %s, want revision 1 deployed", got.Revision, got.Status)
	}
	// The objects found (200s sent ahead) were Helm's to adopt.
	if taken := release.ChecksTakenAhead(f.cfg); taken != 2*resources {
		t.Errorf("the adopting install's existence checks took %d answers sent ahead in all, want %d", taken, 2*resources)
	}
	after, err := f.cs.AppsV1().Deployments(ns).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID != before.UID {
		t.Errorf("the Deployment was made again (uid %s, was %s), want it adopted", after.UID, before.UID)
	}
	left, err := f.cs.CoreV1().Secrets(ns).List(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 1 || left.Items[0].Labels["status"] != "deployed" {
		t.Errorf("records after the deploy: %d, want one, deployed", len(left.Items))
	}
}

// TestDeployRefusesForeignNamespace: a namespace of the same name that
// shipper did not create is left alone.
func TestDeployRefusesForeignNamespace(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	ctx := context.Background()
	_, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	_, err = f.deploy(t, testSHA)
	if err == nil || !strings.Contains(err.Error(), "not created by shipper") {
		t.Fatalf("err = %v, want a refusal naming the foreign namespace", err)
	}
	if _, err := f.cs.CoreV1().Secrets(ns).Get(ctx, release.PullSecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pull secret written into a foreign namespace (err %v)", err)
	}
}

// TestConcurrentDeploysOfOneCommitSerialize: two CI jobs deploying the same
// commit at once both succeed, one after the other, thanks to the Lease.
func TestConcurrentDeploysOfOneCommitSerialize(t *testing.T) {
	f := newDeployFixture(t)
	ns := f.app + "-7c77eb36"
	simulate(t, f.cs, ns, ns, rolloutReady)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.deploy(t, testSHA)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deploy %d: %v", i, err)
		}
	}
	hist, err := f.helm(t, ns).Releases.History(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Errorf("history has %d revisions, want 2 (install, then upgrade)", len(hist))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

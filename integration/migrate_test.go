package integration

// Migrations (--migrate) are Jobs a project's token creates: what the
// policies refuse in a Deployment's pods they refuse in a Job's, a Job
// runs only in a namespace with shipper's quota and NetworkPolicy, and no
// CronJob can be made at all.

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

func TestMigrationJobsAreHeldAsDeployments(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	app, ns, _, tok := deployedFor(t, env, "101", "mj", "6a7b8c9d0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	c101, err := kubernetes.NewForConfig(tok)
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	// The chart's migration Job, as shipper renders it.
	r := runBinary(t, nil, "render", "--app", app, "--sha", "6a7b8c9d", "--domain", "example.com", "--image", "r.example.com/a:1",
		"--migrate", `["/app/migrate", "up"]`, "--protect", "none")
	if r.code != 0 {
		t.Fatalf("shipper render: exit %d: %s", r.code, r.stderr)
	}
	chartJob := rendered[batchv1.Job](t, r.stdout, "Job")
	if chartJob == nil {
		t.Fatalf("shipper render --migrate printed no Job:\n%s", r.stdout)
	}
	job := func(edit func(*corev1.PodSpec)) *batchv1.Job {
		j := chartJob.DeepCopy()
		j.Namespace, j.Name = ns, "probe"
		if edit != nil {
			edit(&j.Spec.Template.Spec)
		}
		return j
	}

	// The apiserver enforces a policy once it compiled it.
	start := time.Now()
	for {
		_, err := c101.BatchV1().Jobs(ns).Create(ctx, job(func(p *corev1.PodSpec) { p.NodeName = "control-plane-0" }), dry)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "shipper-workloads") {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("policy shipper-workloads does not judge Jobs in %s: nodeName: %v", ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c101.BatchV1().Jobs(ns).Create(ctx, job(nil), dry); err != nil {
		t.Errorf("the chart's migration Job is refused: %v", err)
	}

	settings := release.Settings{Found: true, Data: testSettings}
	for _, p := range []struct {
		name, refusal string
		edit          func(*corev1.PodSpec)
	}{
		{"nodeName", "shipper-workloads", func(p *corev1.PodSpec) { p.NodeName = "control-plane-0" }},
		{"system-node-critical", "shipper-workloads", func(p *corev1.PodSpec) { p.PriorityClassName = "system-node-critical" }},
		{"tolerate every taint", "shipper-workloads", func(p *corev1.PodSpec) {
			p.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}},
		{"emptyDir without sizeLimit", "shipper-workloads", func(p *corev1.PodSpec) {
			p.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}},
		{"8 GPUs", "shipper-workloads", func(p *corev1.PodSpec) {
			p.Containers[0].Resources.Limits["nvidia.com/gpu"] = resource.MustParse("8")
		}},
	} {
		j := job(p.edit)
		_, err := c101.BatchV1().Jobs(ns).Create(ctx, j, dry)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), p.refusal) {
			t.Errorf("project 101's token creates a Job with %s: err = %v, want %s's refusal", p.name, err, p.refusal)
		}
		if p.refusal == "shipper-workloads" && len(settings.WorkloadProblems(&j.Spec.Template.Spec)) == 0 {
			t.Errorf("%s: shipper's own check (internal/release/workloads.go) finds nothing", p.name)
		}
	}

	// Pod Security "restricted" (the namespace's enforce label) judges
	// pods, not their controllers: a privileged Job is admitted with a
	// warning, and the pod the Job controller then makes is refused.
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	for what, edit := range map[string]func(*corev1.PodSpec){
		"privileged": func(p *corev1.PodSpec) {
			p.Containers[0].SecurityContext.Privileged = ptr.To(true)
			p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		},
		"hostNetwork": func(p *corev1.PodSpec) { p.HostNetwork = true },
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}, Spec: job(edit).Spec.Template.Spec}
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, dry); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
			t.Errorf("the pod of a Job with %s is admitted in %s: err = %v, want Pod Security's refusal", what, ns, err)
		}
	}

	// A namespace made with the token as kubectl would, without the
	// quota and the NetworkPolicy: no Job runs there.
	bare := bareNamespace(t, c101, app)
	j := job(nil)
	j.Namespace = bare
	_, err = c101.BatchV1().Jobs(bare).Create(ctx, j, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) && !(apierrors.IsInvalid(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")) {
		t.Errorf("project 101's token runs a Job in a namespace without quota and NetworkPolicy: err = %v", err)
	}

	// No CronJob: a schedule would run on after shipper is gone.
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: batchv1.CronJobSpec{Schedule: "* * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: chartJob.Spec}}}
	if _, err := c101.BatchV1().CronJobs(ns).Create(ctx, cj, dry); !apierrors.IsForbidden(err) {
		t.Errorf("project 101's token creates a CronJob: err = %v, want RBAC's refusal", err)
	}
	// Nor a change of a Job (its pod template is immutable, but its
	// labels and deadline are not): create and delete only.
	if _, err := c101.BatchV1().Jobs(ns).Create(ctx, job(nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"activeDeadlineSeconds":999999}}`)
	if _, err := c101.BatchV1().Jobs(ns).Patch(ctx, "probe", "application/merge-patch+json", patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("project 101's token patches a Job: err = %v, want RBAC's refusal", err)
	}
	if err := c101.BatchV1().Jobs(ns).Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		t.Errorf("project 101's token deletes its Job: %v", err)
	}
}

// TestPromoteRefusesThePreviewsDatabase: with the database settings, a
// promote job without production's K8S_SECRET_DATABASE_URL is exit 2, one
// line naming it, and changes nothing (production would otherwise run on
// the commit's preview database).
func TestPromoteRefusesThePreviewsDatabase(t *testing.T) {
	env := testenv.Get(t)
	appName := uniqueName("pdb")
	sha := "9d8c7b6a11111111111111111111111111111111"
	const adminPassword = "never-shown-admin-pw"
	e := with(gitlabEnv(t, env, appName, sha), "SHIPPER_DATABASE_URL", "postgres://admin:"+adminPassword+"@127.0.0.1:1/postgres", "SHIPPER_DATABASE_TEMPLATE", "tpl")
	r := runBinary(t, e, "promote")
	if r.code != 2 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "K8S_SECRET_DATABASE_URL") ||
		strings.Contains(r.stderr+r.stdout, adminPassword) {
		t.Errorf("promote without production's DATABASE_URL: exit %d\n%s", r.code, r.stderr)
	}
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Get(context.Background(), appName+"-production", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused promote made production's namespace: %v", err)
	}
	r = runBinary(t, with(e, "K8S_SECRET_DATABASE_URL", "", "SHIPPER_MIGRATE", "[nope"), "promote")
	if r.code != 2 {
		t.Errorf("promote --migrate that does not parse: exit %d\n%s", r.code, r.stderr)
	}
}

// rendered is the last object of kind in a rendering, nil when none.
func rendered[T any](t *testing.T, manifest, kind string) *T {
	t.Helper()
	var out *T
	for _, doc := range strings.Split(manifest, "\n---") {
		if strings.Contains(doc, "\nkind: "+kind+"\n") {
			out = new(T)
			if err := yaml.Unmarshal([]byte(doc), out); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

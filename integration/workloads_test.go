package integration

// TestWorkloadsStayOnTheirNodes: a hostile review found that project
// 202's token wrote, in its own namespace, Deployments whose pods ran at
// system-node-critical priority (preempting every other project's pods
// and the node daemons), tolerated every taint or named their node (a
// control-plane or dedicated node), had the ephemeral-volume controller
// create a 100Ti PVC, filled the node's disk through an emptyDir without
// sizeLimit, or took GPUs. Policy shipper-workloads
// (deploy/rbac/workloads.yaml) refuses each, on CREATE, UPDATE and patch;
// the chart's Deployment is admitted, and the cluster's settings admit
// what they list.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/shipper-dev/shipper/internal/release"
	"github.com/shipper-dev/shipper/internal/testenv"
)

// workloadSecret is an env value of the probes' Deployments: no refusal
// may quote it.
const workloadSecret = "s3cr3t-workload-value"

func TestWorkloadsStayOnTheirNodes(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	admin, err := env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	c202, err := kubernetes.NewForConfig(projectToken(t, env, "202"))
	if err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	// The namespace of a commit of app, as project 202's shipper makes it
	// (namespace.go, access.go, isolation.go: its RoleBinding, NetworkPolicy,
	// quota and LimitRange, without which no Deployment is admitted).
	app, ns, _, _ := deployedFor(t, env, "202", "wl", "5e6f7081aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")

	// The chart's Deployment, as shipper renders it, with a secret env,
	// protected: the gate beside the app passes the same policies.
	r := runBinary(t, nil, "render", "--app", app, "--sha", "5e6f7081", "--domain", "example.com", "--image", "r.example.com/a:1",
		"--gate-image", "r.example.com/tools/shipper:1")
	if r.code != 0 {
		t.Fatalf("shipper render: exit %d: %s", r.code, r.stderr)
	}
	chartDeployment := rendered[appsv1.Deployment](t, r.stdout, "Deployment")
	if chartDeployment == nil {
		t.Fatalf("shipper render printed no Deployment:\n%s", r.stdout)
	}
	chartDeployment.Namespace = ns
	chartDeployment.Spec.Template.Spec.Containers[0].Env = append(chartDeployment.Spec.Template.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "TOKEN", Value: workloadSecret})
	deployment := func(name string, edit func(*corev1.PodSpec)) *appsv1.Deployment {
		d := chartDeployment.DeepCopy()
		d.Name = name
		if edit != nil {
			edit(&d.Spec.Template.Spec)
		}
		return d
	}
	refused := func(t *testing.T, what string, err error, field string) {
		t.Helper()
		switch {
		case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "shipper-workloads"):
			t.Errorf("%s: err = %v, want shipper-workloads' refusal", what, err)
		case !strings.Contains(err.Error(), field) || strings.Contains(err.Error(), "failed expression"):
			t.Errorf("%s: the refusal does not name %s: %v", what, field, err)
		case strings.Contains(err.Error(), workloadSecret):
			t.Errorf("%s: the refusal quotes the env value: %v", what, err)
		case what == "CREATE":
			t.Logf("%v", err)
		}
	}

	// The apiserver enforces a policy once it compiled it: wait until
	// nodeName is refused.
	start := time.Now()
	for {
		_, err := c202.AppsV1().Deployments(ns).Create(ctx, deployment("probe", func(p *corev1.PodSpec) { p.NodeName = "control-plane-0" }), dry)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "shipper-workloads") {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("policy shipper-workloads not enforced in %s: nodeName: %v", ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An expression that does not compile or type-check would refuse
	// every Deployment (failurePolicy Fail: the chart's is admitted below),
	// and a message that does not evaluate is replaced by the expression
	// ("failed expression", which refused rejects). The harness runs no
	// controller that writes the policy's status.typeChecking.
	quantity := resource.MustParse
	sizeLimit := func(q string) *resource.Quantity { v := quantity(q); return &v }
	emptyDir := func(limit *resource.Quantity) func(*corev1.PodSpec) {
		return func(p *corev1.PodSpec) {
			p.Volumes = append(p.Volumes, corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: limit}}})
		}
	}
	resources := func(name corev1.ResourceName, q string, init bool) func(*corev1.PodSpec) {
		return func(p *corev1.PodSpec) {
			c := &p.Containers[0]
			if init {
				p.InitContainers = []corev1.Container{*p.Containers[0].DeepCopy()}
				p.InitContainers[0].Name = "init"
				p.InitContainers[0].LivenessProbe, p.InitContainers[0].ReadinessProbe = nil, nil
				c = &p.InitContainers[0]
			}
			if c.Resources.Limits == nil {
				c.Resources.Limits = corev1.ResourceList{}
			}
			c.Resources.Limits[name] = quantity(q)
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			c.Resources.Requests[name] = quantity(q)
		}
	}
	fsGroup := corev1.PersistentVolumeFilesystem
	probes := []struct {
		name, field string
		edit        func(*corev1.PodSpec)
	}{
		{"nodeName", "nodeName", func(p *corev1.PodSpec) { p.NodeName = "control-plane-0" }},
		{"system-node-critical", "priorityClassName", func(p *corev1.PodSpec) { p.PriorityClassName = "system-node-critical" }},
		{"priority", "spec.template.spec.priority is", func(p *corev1.PodSpec) { v := int32(2000001000); p.Priority = &v }},
		{"tolerate every taint", "tolerations", func(p *corev1.PodSpec) {
			p.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}},
		{"tolerate the control plane", "tolerations", func(p *corev1.PodSpec) {
			p.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}},
		{"runtimeClassName", "runtimeClassName", func(p *corev1.PodSpec) { v := "privileged-nodes"; p.RuntimeClassName = &v }},
		{"schedulerName", "schedulerName", func(p *corev1.PodSpec) { p.SchedulerName = "my-scheduler" }},
		{"100Ti ephemeral volume", "ephemeral", func(p *corev1.PodSpec) {
			p.Volumes = append(p.Volumes, corev1.Volume{Name: "big", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
				VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, VolumeMode: &fsGroup,
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: quantity("100Ti")}},
				}}}}})
		}},
		{"csi volume", "csi", func(p *corev1.PodSpec) {
			p.Volumes = append(p.Volumes, corev1.Volume{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "inline.example.com"}}})
		}},
		{"emptyDir without sizeLimit", "emptyDir", emptyDir(nil)},
		{"emptyDir of 100Ti", "emptyDir", emptyDir(sizeLimit("100Ti"))},
		{"8 GPUs", "resources", resources("nvidia.com/gpu", "8", false)},
		{"hugepages", "resources", resources("hugepages-2Mi", "2Mi", false)},
		{"a GPU for an initContainer", "resources", resources("nvidia.com/gpu", "1", true)},
	}

	// The chart's Deployment, and one with a small emptyDir, are admitted:
	// created for real, to be updated below.
	settings := release.Settings{Found: true, Data: testSettings}
	for _, d := range []*appsv1.Deployment{deployment("app", nil), deployment("scratch", emptyDir(sizeLimit("512Mi")))} {
		if p := settings.WorkloadProblems(&d.Spec.Template.Spec); len(p) > 0 {
			t.Errorf("shipper refuses Deployment %s, which the policy admits: %v", d.Name, p)
		}
	}
	if _, err := c202.AppsV1().Deployments(ns).Create(ctx, deployment("app", nil), metav1.CreateOptions{}); err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
	if _, err := c202.AppsV1().Deployments(ns).Create(ctx, deployment("scratch", emptyDir(sizeLimit("512Mi"))), dry); err != nil {
		t.Errorf("a Deployment with a 512Mi emptyDir: %v", err)
	}

	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			d := deployment("probe", p.edit)
			_, err := c202.AppsV1().Deployments(ns).Create(ctx, d, dry)
			refused(t, "CREATE", err, p.field)
			if len(settings.WorkloadProblems(&d.Spec.Template.Spec)) == 0 {
				t.Errorf("shipper's WorkloadProblems (internal/release/workloads.go) finds nothing the policy refuses")
			}

			cur, err := c202.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p.edit(&cur.Spec.Template.Spec)
			_, err = c202.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			refused(t, "UPDATE", err, p.field)

			// The same change as a merge patch and as a JSON patch of the
			// pod template's spec.
			spec, err := json.Marshal(cur.Spec.Template.Spec)
			if err != nil {
				t.Fatal(err)
			}
			merge := []byte(`{"spec":{"template":{"spec":` + string(spec) + `}}}`)
			_, err = c202.AppsV1().Deployments(ns).Patch(ctx, "app", types.MergePatchType, merge, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			refused(t, "merge patch", err, p.field)
			jsonPatch := []byte(`[{"op":"replace","path":"/spec/template/spec","value":` + string(spec) + `}]`)
			_, err = c202.AppsV1().Deployments(ns).Patch(ctx, "app", types.JSONPatchType, jsonPatch, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
			refused(t, "JSON patch", err, p.field)
		})
	}

	// The cluster's settings admit what they list: a priority class, a
	// taint key, a runtime class, GPUs, a larger emptyDir.
	t.Run("settings", func(t *testing.T) {
		data := map[string]string{}
		for k, v := range testSettings {
			data[k] = v
		}
		data["priority-classes"] = "shipper-apps, batch-low"
		data["tolerations"] = "dedicated.example.com/web"
		data["runtime-classes"] = "gvisor"
		data["extended-resources"] = "nvidia.com/gpu"
		data["empty-dir-max"] = "8Gi"
		if err := env.ApplySettings(ctx, data); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.ApplySettings(context.Background(), testSettings) })
		allowed := deployment("allowed", func(p *corev1.PodSpec) {
			p.PriorityClassName = "shipper-apps"
			p.Tolerations = []corev1.Toleration{{Key: "dedicated.example.com/web", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoSchedule}}
			v := "gvisor"
			p.RuntimeClassName = &v
			resources("nvidia.com/gpu", "1", false)(p)
			emptyDir(sizeLimit("8Gi"))(p)
		})
		start := time.Now()
		for { // the policy's parameter informer
			_, err := c202.AppsV1().Deployments(ns).Create(ctx, allowed, dry)
			if err == nil {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("settings allow priority class shipper-apps, taint dedicated.example.com/web, runtime class gvisor, nvidia.com/gpu, an 8Gi emptyDir: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if p := (release.Settings{Found: true, Data: data}).WorkloadProblems(&allowed.Spec.Template.Spec); len(p) > 0 {
			t.Errorf("shipper refuses what the settings allow: %v", p)
		}
		// What they do not list is still refused.
		for _, p := range probes[:4] {
			_, err := c202.AppsV1().Deployments(ns).Create(ctx, deployment("probe", p.edit), dry)
			refused(t, p.name+" with settings", err, p.field)
		}
		_, err := c202.AppsV1().Deployments(ns).Create(ctx, deployment("probe", emptyDir(sizeLimit("9Gi"))), dry)
		refused(t, "a 9Gi emptyDir (empty-dir-max 8Gi)", err, "emptyDir")
	})

	// shipper refuses, exit 2 before it changes anything, a chart whose
	// Deployment the policy would refuse: the embedded chart's resources
	// (values) name any resource, a chart of the user's anything.
	t.Run("shipper refuses before the apiserver does", func(t *testing.T) {
		tok := projectToken(t, env, "202")
		app := uniqueName("wc")
		sha := "6f7081923a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
		e := gitlabEnv(t, env, app, sha)
		e["KUBE_TOKEN"], e["CI_PROJECT_ID"], e["CI_PROJECT_PATH"] = tok.BearerToken, "202", "group-202/"+app
		if r := runBinary(t, e, "package"); r.code != 0 {
			t.Fatalf("package: %s", r.stderr)
		}
		values := filepath.Join(t.TempDir(), "gpu.yaml")
		if err := os.WriteFile(values, []byte("resources:\n  limits:\n    nvidia.com/gpu: 1\nenv:\n  TOKEN: "+workloadSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBinary(t, e, "deploy", "--values", values)
		t.Logf("deploy --values (nvidia.com/gpu): exit %d: %s", r.code, r.stderr)
		if r.code != 2 || !strings.Contains(r.stderr, "nvidia.com/gpu") || !strings.Contains(r.stderr, "extended-resources") || strings.Contains(r.stderr, workloadSecret) {
			t.Errorf("deploy of a chart asking for a GPU: exit %d, want 2 naming the resource and the setting, not the env value", r.code)
		}
		if _, err := admin.CoreV1().Namespaces().Get(ctx, app+"-"+sha[:8], metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			_ = admin.CoreV1().Namespaces().Delete(context.Background(), app+"-"+sha[:8], metav1.DeleteOptions{})
			t.Errorf("the refused deploy made its namespace: %v", err)
		}
	})
}

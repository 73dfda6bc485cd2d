package release_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/shipper-dev/shipper/internal/release"
)

// TestWorkloadProblems: shipper's copy of policy shipper-workloads
// (deploy/rbac/workloads.yaml), which refuses a chart's Deployment with
// exit 2 before anything changes; integration's
// TestWorkloadsStayOnTheirNodes holds it to the apiserver's answers.
func TestWorkloadProblems(t *testing.T) {
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	emptyDir := func(limit *resource.Quantity) corev1.Volume {
		return corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: limit}}}
	}
	withResource := func(name corev1.ResourceName) corev1.PodSpec {
		return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{"cpu": resource.MustParse("1"), name: resource.MustParse("1")}}}}}
	}
	gvisor := "gvisor"
	prio := int32(2000001000)
	none := map[string]string{"domains": "example.com"}
	allowing := map[string]string{"priority-classes": "shipper-apps", "tolerations": "dedicated.example.com/web",
		"runtime-classes": "gvisor", "extended-resources": "nvidia.com/gpu", "empty-dir-max": " 8Gi "}
	for _, tc := range []struct {
		name     string
		settings map[string]string
		spec     corev1.PodSpec
		want     string // "": admitted
	}{
		{"the chart's pods", none, corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("64Mi"), "ephemeral-storage": resource.MustParse("1Gi")}}}},
			SchedulerName: corev1.DefaultSchedulerName}, ""},
		{"nodeName", none, corev1.PodSpec{NodeName: "control-plane-0"}, "spec.template.spec.nodeName"},
		{"priority", none, corev1.PodSpec{Priority: &prio}, "spec.template.spec.priority:"},
		{"system-node-critical", none, corev1.PodSpec{PriorityClassName: "system-node-critical"}, "priorityClassName: refused unless"},
		{"system-node-critical, other classes allowed", allowing, corev1.PodSpec{PriorityClassName: "system-node-critical"}, "priority-classes: shipper-apps"},
		{"an allowed class", allowing, corev1.PodSpec{PriorityClassName: "shipper-apps"}, ""},
		{"tolerate every taint", allowing, corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}, "tolerations:"},
		{"tolerate an allowed taint", allowing, corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated.example.com/web", Operator: corev1.TolerationOpExists}}}, ""},
		{"tolerate the control plane", allowing, corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated.example.com/web"}, {Key: "node-role.kubernetes.io/control-plane"}}}, "tolerations:"},
		{"runtimeClassName", none, corev1.PodSpec{RuntimeClassName: &gvisor}, "runtimeClassName"},
		{"an allowed runtimeClassName", allowing, corev1.PodSpec{RuntimeClassName: &gvisor}, ""},
		{"schedulerName", none, corev1.PodSpec{SchedulerName: "my-scheduler"}, "schedulerName"},
		{"ephemeral volume", allowing, corev1.PodSpec{Volumes: []corev1.Volume{{Name: "big", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}}}, "ephemeral and csi"},
		{"csi volume", allowing, corev1.PodSpec{Volumes: []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "x"}}}}}, "ephemeral and csi"},
		{"emptyDir without sizeLimit", allowing, corev1.PodSpec{Volumes: []corev1.Volume{emptyDir(nil)}}, "sizeLimit of at most 8Gi"},
		{"emptyDir of 1Gi", none, corev1.PodSpec{Volumes: []corev1.Volume{emptyDir(q("1Gi"))}}, ""},
		{"emptyDir of 2Gi", none, corev1.PodSpec{Volumes: []corev1.Volume{emptyDir(q("2Gi"))}}, "sizeLimit of at most 1Gi"},
		{"emptyDir of 8Gi, allowed", allowing, corev1.PodSpec{Volumes: []corev1.Volume{emptyDir(q("8Gi"))}}, ""},
		{"empty-dir-max not a quantity", map[string]string{"empty-dir-max": "lots"}, corev1.PodSpec{Volumes: []corev1.Volume{emptyDir(q("2Gi"))}}, "sizeLimit of at most 1Gi"},
		{"GPUs", none, withResource("nvidia.com/gpu"), "nvidia.com/gpu is not among cpu, memory, ephemeral-storage"},
		{"hugepages", allowing, withResource("hugepages-2Mi"), "hugepages-2Mi is not among"},
		{"allowed GPUs", allowing, withResource("nvidia.com/gpu"), ""},
		{"an initContainer's GPU", none, corev1.PodSpec{InitContainers: withResource("nvidia.com/gpu").Containers}, "nvidia.com/gpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := release.Settings{Found: true, Data: tc.settings}.WorkloadProblems(&tc.spec)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("refused: %v", got)
			case tc.want != "" && (len(got) == 0 || !strings.Contains(strings.Join(got, "; "), tc.want)):
				t.Errorf("got %q, want a problem naming %q", got, tc.want)
			}
			if p := (release.Settings{}).WorkloadProblems(&tc.spec); len(p) > 0 {
				t.Errorf("without settings (no policy to ask): %v", p)
			}
		})
	}
}

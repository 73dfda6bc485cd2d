package release

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// The settings keys of policy shipper-workloads (deploy/rbac/workloads.yaml):
// what a Deployment's pods may ask of the nodes beyond the policy's floor.
const (
	settingPriorityClasses   = "priority-classes"
	settingTolerations       = "tolerations" // taint keys
	settingRuntimeClasses    = "runtime-classes"
	settingExtendedResources = "extended-resources"
	settingEmptyDirMax       = "empty-dir-max"
)

// defaultEmptyDirMax is an emptyDir's largest sizeLimit without
// empty-dir-max.
var defaultEmptyDirMax = resource.MustParse("1Gi")

// WorkloadProblems lists what policy shipper-workloads refuses in a
// Deployment's pod template spec under the settings s, each naming the
// field and the rule, never a value of the pod's. Without settings
// (s.Found false) it lists nothing: there is no policy to ask.
func (s Settings) WorkloadProblems(p *corev1.PodSpec) []string {
	if !s.Found {
		return nil
	}
	var out []string
	if p.NodeName != "" {
		out = append(out, "spec.template.spec.nodeName: refused (it skips the scheduler and the nodes' taints)")
	}
	if p.Priority != nil {
		out = append(out, "spec.template.spec.priority: refused (a pod's priority comes from its priorityClassName)")
	}
	if p.PriorityClassName != "" && !slices.Contains(s.List(settingPriorityClasses), p.PriorityClassName) {
		out = append(out, "spec.template.spec.priorityClassName: refused unless the cluster's settings allow the class ("+s.listed(settingPriorityClasses)+")")
	}
	for _, t := range p.Tolerations {
		if t.Key == "" || !slices.Contains(s.List(settingTolerations), t.Key) {
			out = append(out, "spec.template.spec.tolerations: each names a taint key the cluster's settings allow ("+s.listed(settingTolerations)+")")
			break
		}
	}
	if p.RuntimeClassName != nil && !slices.Contains(s.List(settingRuntimeClasses), *p.RuntimeClassName) {
		out = append(out, "spec.template.spec.runtimeClassName: refused unless the cluster's settings allow the class ("+s.listed(settingRuntimeClasses)+")")
	}
	if p.SchedulerName != "" && p.SchedulerName != corev1.DefaultSchedulerName {
		out = append(out, "spec.template.spec.schedulerName: pods use "+corev1.DefaultSchedulerName)
	}
	maxText, maxSize := s.emptyDirMax()
	for _, v := range p.Volumes {
		switch {
		case v.Ephemeral != nil, v.CSI != nil:
			out = append(out, "spec.template.spec.volumes["+v.Name+"]: ephemeral and csi volumes are refused")
		case v.EmptyDir != nil && (v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Cmp(maxSize) > 0):
			out = append(out, "spec.template.spec.volumes["+v.Name+"].emptyDir: has a sizeLimit of at most "+maxText+" ("+SettingsNamespace+"/"+SettingsName+", "+settingEmptyDirMax+")")
		}
	}
	allowed := append([]string{"cpu", "memory", "ephemeral-storage"}, s.List(settingExtendedResources)...)
	for _, c := range slices.Concat(p.InitContainers, p.Containers) {
		for kind, list := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
			for name := range list {
				if !slices.Contains(allowed, string(name)) {
					out = append(out, fmt.Sprintf("spec.template.spec containers[%s].resources.%s: %s is not among %s (extended resources: %s/%s, %s)",
						c.Name, kind, name, strings.Join(allowed, ", "), SettingsNamespace, SettingsName, settingExtendedResources))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// listed says what key lists, for a refusal.
func (s Settings) listed(key string) string {
	l := s.List(key)
	if len(l) == 0 {
		return SettingsNamespace + "/" + SettingsName + ", " + key + ": none"
	}
	return SettingsNamespace + "/" + SettingsName + ", " + key + ": " + strings.Join(l, ", ")
}

// emptyDirMax is the largest emptyDir sizeLimit, as the policy reads
// empty-dir-max: the default when unset or not a quantity.
func (s Settings) emptyDirMax() (string, resource.Quantity) {
	v := strings.TrimSpace(s.Get(settingEmptyDirMax))
	if q, err := resource.ParseQuantity(v); err == nil && v != "" {
		return v, q
	}
	return defaultEmptyDirMax.String(), defaultEmptyDirMax
}

// checkWorkloads refuses (a usage error: exit 2) a rendered manifest whose
// Deployments or Jobs (hooks) policy shipper-workloads would refuse, before anything in
// the cluster changes; a chart of the user's (--chart) renders anything.
func (c *Configuration) checkWorkloads(ctx context.Context, manifest string) error {
	s, err := c.settings(ctx)
	if err != nil || !s.Found {
		return err
	}
	var problems []string
	for _, doc := range strings.Split(manifest, "\n---") {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil {
			continue
		}
		var pod *corev1.PodSpec
		var name string
		switch {
		case head.Kind == "Deployment" && head.APIVersion == "apps/v1":
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
				continue // Helm's install reports it
			}
			pod, name = &d.Spec.Template.Spec, d.Name
		case head.Kind == "Job" && head.APIVersion == "batch/v1": // a hook (migrate.yaml)
			var j batchv1.Job
			if err := yaml.Unmarshal([]byte(doc), &j); err != nil {
				continue
			}
			pod, name = &j.Spec.Template.Spec, j.Name
		default:
			continue
		}
		for _, p := range s.WorkloadProblems(pod) {
			problems = append(problems, head.Kind+" "+name+": "+p)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if n := len(problems) - maxProblems; n > 0 {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", n))
	}
	return &UsageError{Input: "chart", Value: NotShown, Rule: strings.Join(problems, "; ") +
		" (policy shipper-workloads, deploy/rbac/workloads.yaml; docs/security.md)"}
}

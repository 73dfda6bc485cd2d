//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// jobImages holds the job image each registry got (`make image`, built
// once for the parts that run it: in-cluster, and protect's gate).
var jobImages sync.Map

// jobImage builds and pushes shipper's job image to the scenario's
// registry, once, and returns its reference with its digest.
func (c *cluster) jobImage(t *testing.T) string {
	t.Helper()
	reg := c.env.Registry
	if ref, ok := jobImages.Load(reg.Repository("tools/shipper")); ok {
		return ref.(string)
	}
	build := exec.Command("hack/image.sh")
	build.Dir = ".."
	build.Env = append(os.Environ(), "IMAGE="+reg.Repository("tools/shipper"),
		"SHIPPER_REGISTRY_USER="+reg.Username, "SHIPPER_REGISTRY_PASSWORD="+reg.Password)
	var stderr strings.Builder
	build.Stderr = &stderr
	out, err := build.Output()
	if err != nil {
		t.Fatalf("hack/image.sh: %v\n%s", err, stderr.String())
	}
	ref := strings.TrimSpace(string(out))
	say(t, "\n$ make image IMAGE=%s\n%s", reg.Repository("tools/shipper"), ref)
	jobImages.Store(reg.Repository("tools/shipper"), ref)
	return ref
}

// inCluster runs shipper from its job image (`make image`) as a pod, the
// way GitLab Runner's Kubernetes executor runs a job: a Job in
// shipper-system with deploy/rbac's ServiceAccount, in-cluster
// configuration only (no kubeconfig, no KUBE_URL), that deploys and
// promotes a commit; the result is curled through Traefik.
func inCluster(t *testing.T, c *cluster) {
	ctx := context.Background()
	reg := c.env.Registry
	jobImage := c.jobImage(t)

	sha := "f00dcafe0718293a4b5c6d7e8f90123456789012"
	appImage := c.run(t, sha, "package")

	cs, err := c.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "shipper-system"
	if err := createPullSecret(ctx, cs, reg, ns, "job-image-pull"); err != nil {
		t.Fatal(err)
	}
	env := []corev1.EnvVar{}
	for k, v := range map[string]string{
		"CI_PROJECT_NAME": c.app, "CI_PROJECT_ID": "1001", "CI_PROJECT_PATH": "demo/" + c.app,
		"CI_COMMIT_SHA": sha, "CI_COMMIT_SHORT_SHA": sha[:8],
		// The registry is on the host's loopback: the kubelet pulls from
		// it, the pod cannot reach it, so the image is not resolved again.
		"SHIPPER_IMAGE_REF": appImage, "SHIPPER_RESOLVE": "false",
		// The protect part runs protected previews; this one curls the result.
		"SHIPPER_PROTECT": "none",
		"CI_DEPLOY_USER":  reg.Username, "CI_DEPLOY_PASSWORD": reg.Password,
		"KUBE_INGRESS_BASE_DOMAIN": c.router.domain, "SHIPPER_INGRESS_CLASS": testenv.IngressClass,
		"SHIPPER_URL_SCHEME": "http", "SHIPPER_TIMEOUT": "2m",
	} {
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "shipper-in-cluster", Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				ServiceAccountName: "shipper",
				RestartPolicy:      corev1.RestartPolicyNever,
				ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "job-image-pull"}},
				// Pod Security "restricted", as shipper-system enforces.
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{
					Name: "job", Image: jobImage, Env: env,
					Command: []string{"/bin/sh", "-c", "shipper deploy && shipper promote"},
					SecurityContext: &corev1.SecurityContext{
						AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					},
				}},
			}},
		},
	}
	if _, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := func() string {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
		if err != nil || len(pods.Items) == 0 {
			return fmt.Sprintf("(no pod: %v)", err)
		}
		b, err := cs.CoreV1().Pods(ns).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return fmt.Sprintf("(no logs: %v; pod status %+v)", err, pods.Items[0].Status.ContainerStatuses)
		}
		return string(b)
	}
	deadline := time.Now().Add(5 * time.Minute) // two runs of SHIPPER_TIMEOUT=2m, and the pull
	for {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Succeeded > 0 {
			break
		}
		if j.Status.Failed > 0 || time.Now().After(deadline) {
			t.Fatalf("the in-cluster job did not succeed (failed %d):\n%s", j.Status.Failed, logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
	jobLogs := logs()
	say(t, "\n$ kubectl logs job/%s -n %s   # shipper deploy && shipper promote, in-cluster\n%s", job.Name, ns, jobLogs)
	if strings.Count(jobLogs, "in-cluster configuration") != 2 {
		t.Errorf("the job's shipper runs did not both use the in-cluster configuration:\n%s", jobLogs)
	}
	c.eventually(t, c.app+"-"+sha[:8]+"."+c.router.domain, "/version", 200, sha[:8])
	c.eventually(t, c.app+"."+c.router.domain, "/version", 200, sha[:8])
	c.curl(t, c.app+"."+c.router.domain, "/version")
}

package release

import (
	"context"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// A commit's secret environment (Deploy.Secrets: GitLab's K8S_SECRET_*
// variables, as Auto DevOps names them) is a Secret "<release>-env" in the
// commit's namespace, which the Deployment takes with envFrom. The values
// never enter Helm's values or release records, nor any output: the chart
// gets the Secret's name and its resourceVersion (envSecret.version), a
// pod template annotation, so a changed value alone rolls the pods and an
// unchanged one (a server-side apply that changes nothing keeps the
// resourceVersion) does not.

// envSecretName is the Secret of commit n's secret environment.
func envSecretName(n Names) string { return n.Release + "-env" }

// CheckSecretNames refuses a name that is no environment variable name,
// naming the variable and never its value.
func CheckSecretNames(secrets map[string]string, prefix string) error {
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if len(validation.IsCIdentifier(k)) > 0 {
			return &UsageError{Input: "secret variable", Value: prefix + k, Rule: "the name after the prefix must be an environment variable name (letters, digits, _; not starting with a digit)"}
		}
	}
	return nil
}

// applyEnvSecret writes (server-side apply, shipper's field manager) or
// removes the Secret of commit n's secret environment and returns its
// resourceVersion ("" when there is none).
func (c *Configuration) applyEnvSecret(ctx context.Context, n Names, secrets map[string]string) (string, error) {
	return c.applyEnvSecretNamed(ctx, n, envSecretName(n), secrets)
}

// applyEnvSecretNamed is applyEnvSecret for the Secret name in n's
// namespace: the commit's own, or production's (sizing.go).
func (c *Configuration) applyEnvSecretNamed(ctx context.Context, n Names, name string, secrets map[string]string) (string, error) {
	api := c.client.CoreV1().Secrets(n.Namespace)
	if len(secrets) == 0 {
		err := api.Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("removing secret %s/%s: %w", n.Namespace, name, err)
		}
		return "", nil
	}
	data := make(map[string][]byte, len(secrets))
	for k, v := range secrets {
		data[k] = []byte(v)
	}
	ac := corev1ac.Secret(name, n.Namespace).
		WithLabels(map[string]string{LabelManagedBy: ManagedBy, LabelApp: n.AppPart}).
		WithType("Opaque").
		WithData(data)
	got, err := api.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "shipper", Force: true})
	if err != nil {
		return "", secretErr(n.Namespace, name, err)
	}
	return got.ResourceVersion, nil
}

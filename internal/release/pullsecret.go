package release

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// PullSecretName is the image pull secret Deploy keeps in each preview
// namespace when registry credentials are given.
const PullSecretName = "shipper-pull"

// RegistryCredentials let the cluster pull a commit's image: GitLab's
// deploy token (CI_DEPLOY_USER/CI_DEPLOY_PASSWORD), never the job token.
type RegistryCredentials struct {
	Username, Password string
}

// applyPullSecret creates or updates the kubernetes.io/dockerconfigjson
// Secret that lets the namespace's pods pull from the image's registry.
func (c *Configuration) applyPullSecret(ctx context.Context, ns, repository string, cred RegistryCredentials) error {
	server := registryHost(repository)
	auth := base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
	cfgJSON, err := json.Marshal(map[string]any{"auths": map[string]any{
		server: map[string]string{"username": cred.Username, "password": cred.Password, "auth": auth},
	}})
	if err != nil {
		return err
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PullSecretName, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfgJSON},
	}
	secrets := c.client.CoreV1().Secrets(ns)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := secrets.Get(ctx, PullSecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		got.Type, got.Data = want.Type, want.Data
		_, err = secrets.Update(ctx, got, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		// The error names the secret, never its content.
		return fmt.Errorf("writing image pull secret %s/%s: %w", ns, PullSecretName, err)
	}
	return nil
}

// registryHost is the registry part of an image repository, as Docker
// names it: the first path element when it looks like a host.
func registryHost(repository string) string {
	first, _, found := strings.Cut(repository, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

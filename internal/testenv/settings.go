package testenv

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ApplySettings writes shipper's cluster settings, ConfigMap
// shipper-system/shipper-settings (internal/release/settings.go), with
// data, as an admin does once after applying deploy/rbac; the namespace
// must exist (deploy/rbac makes it).
func (e *Env) ApplySettings(ctx context.Context, data map[string]string) error {
	cs, err := e.AdminClient()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shipper-settings", Namespace: "shipper-system"}, Data: data}
	_, err = cs.CoreV1().ConfigMaps("shipper-system").Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = cs.CoreV1().ConfigMaps("shipper-system").Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("writing shipper-system/shipper-settings: %w", err)
	}
	return nil
}

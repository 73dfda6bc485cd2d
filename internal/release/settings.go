package release

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The platform team's settings for every project on the cluster: one
// ConfigMap an admin writes (docs/security.md), read by shipper before its
// first change and given to the admission policies of deploy/rbac as their
// parameters, so the client's early refusal (exit 2, nothing changed) and
// the apiserver's refusal come from the same data.
const (
	SettingsNamespace = "shipper-system"
	SettingsName      = "shipper-settings"
)

// Settings is the data of the settings ConfigMap. The zero value (no
// ConfigMap, or no right to read it) sets nothing: shipper then checks
// nothing beyond its own rules, and the apiserver, with deploy/rbac
// applied, still refuses what the policies refuse.
type Settings struct {
	// Found is whether the ConfigMap was read.
	Found bool
	Data  map[string]string
}

// Get returns the value of key, "" when unset.
func (s Settings) Get(key string) string { return s.Data[key] }

// List returns the value of key split on commas and white space (space,
// tab, CR, LF, FF: RE2's \s, as deploy/rbac's CEL splits it).
func (s Settings) List(key string) []string {
	return strings.FieldsFunc(s.Data[key], func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '\f'
	})
}

// settings reads the settings ConfigMap once for the Configuration's life;
// a caller that asks while it is read waits for that answer. NotFound and
// Forbidden give the zero Settings: a cluster without the ConfigMap, or
// manifests older than it, is not an error. A read cut by its caller's
// context is not kept: an operation that ended while its read was sent
// early (a deploy refused first) leaves the next one to read again.
func (c *Configuration) settings(ctx context.Context) (Settings, error) {
	c.settingsMu.Lock()
	defer c.settingsMu.Unlock()
	if c.settingsRead || c.client == nil {
		return c.settingsVal, c.settingsErr
	}
	cm, err := c.client.CoreV1().ConfigMaps(SettingsNamespace).Get(ctx, SettingsName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
	case err != nil && ctx.Err() != nil:
		return Settings{}, fmt.Errorf("reading the cluster's shipper settings (ConfigMap %s/%s): %w", SettingsNamespace, SettingsName, err)
	case err != nil:
		c.settingsErr = fmt.Errorf("reading the cluster's shipper settings (ConfigMap %s/%s): %w", SettingsNamespace, SettingsName, err)
	default:
		c.settingsVal = Settings{Found: true, Data: cm.Data}
	}
	c.settingsRead = true
	return c.settingsVal, c.settingsErr
}

package release

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/shipper-dev/shipper/internal/gate"
)

// Private previews (Deploy.Protection; the gate itself is internal/gate):
//
//	plan     protection values (whole, shipper's: a values file cannot turn
//	         them off or point them elsewhere): the gate's image, the
//	         Secret's name, the hosts answered without login (production's,
//	         when only previews are protected) and the login host; the
//	         chart then runs shipper-gate beside the app on the port named
//	         http, which the Service and the NetworkPolicy's router rule
//	         reach (the app's own port is then named app, reached from the
//	         pod's own namespace only: isolation.go).
//	secret   the app's Secret "shipper-gate" in its production namespace
//	         holds its key (random, made on the first protected deploy),
//	         password and bypass; each protected commit gets a copy,
//	         "<release>-gate", mounted by the gate as files. A deploy that
//	         brings a new password or bypass writes it to the app's Secret
//	         and to every copy (the gates read them again within a minute):
//	         a changed password ends every session of the app. Without one,
//	         the app's stays: a job without the (protected) variable does
//	         not turn the password off. Share links are signed with the key
//	         alone (ShareLink); RotateGateKey ends them all, and sessions.
//	records  the release record carries LabelProtect, which list and
//	         status show.
//
// The password and bypass never enter values, records, logs or output:
// only the Secret's name does.

// Protect is which of an app's hosts are protected.
type Protect string

const (
	// ProtectPreviews protects previews and branch aliases; production is
	// public. The default.
	ProtectPreviews Protect = "previews"
	// ProtectAll protects production too.
	ProtectAll Protect = "all"
	// ProtectNone runs no gate.
	ProtectNone Protect = "none"
)

// ParseProtect checks a --protect value.
func ParseProtect(s string) (Protect, error) {
	switch p := Protect(s); p {
	case ProtectPreviews, ProtectAll, ProtectNone:
		return p, nil
	}
	return "", &UsageError{Input: "--protect", Value: s, Rule: "must be previews (the default: production public), all or none"}
}

// Protection is how a deploy protects its commit.
type Protection struct {
	Mode Protect
	// Image is the gate's image: shipper's job image, which holds
	// shipper-gate (GitLab: $CI_JOB_IMAGE).
	Image string
	// Password and Bypass, when set, become the app's (see above); ""
	// keeps the app's.
	Password, Bypass string
	// OIDC, when set, lets people in with an OpenID Connect provider
	// (GitLab: a group's members); its client secret is the app's like
	// the password (OIDCSecret, "" keeps the app's).
	OIDC       *ProtectionOIDC
	OIDCSecret string
}

// ProtectionOIDC is the gate's sign-in with a provider: the gate's own
// --oidc-* flags (internal/gate), which a deploy checks as the gate will.
type ProtectionOIDC struct {
	Issuer, ClientID, Groups, Name string
	AllowAnyUser                   bool
}

// args are o's gate flags.
func (o *ProtectionOIDC) args() []string {
	a := []string{"--oidc-issuer=" + o.Issuer, "--oidc-client-id=" + o.ClientID}
	if o.Groups != "" {
		a = append(a, "--oidc-groups="+o.Groups)
	}
	if o.AllowAnyUser {
		a = append(a, "--oidc-allow-any-user")
	}
	if o.Name != "" {
		a = append(a, "--oidc-name="+o.Name)
	}
	return a
}

// LabelProtect, on a commit's release records, is its Protect mode.
const LabelProtect = "shipper.dev/protect"

// GatePort is the port the gate listens on in a protected pod;
// GatePublicPort its listener without a login (ProtectPreviews), which
// production's route reaches through the Service's public port.
const (
	GatePort       = 4180
	GatePublicPort = 4181
)

const appGateSecret = "shipper-gate"

// gateSecretName is commit n's copy of the app's gate Secret.
func gateSecretName(n Names) string { return n.Release + "-gate" }

func (p *Protection) on() bool { return p != nil && p.Mode != ProtectNone && p.Mode != "" }

// check refuses a protection that cannot run, before anything changes.
func (p *Protection) check() error {
	if !p.on() {
		return nil
	}
	if p.Image == "" {
		return &UsageError{Input: "--gate-image", Value: "", Rule: "protected previews need the gate's image: shipper's job image, which holds shipper-gate " +
			"(GitLab: SHIPPER_GATE_IMAGE=$CI_JOB_IMAGE), or --protect none"}
	}
	if _, err := ParseImage(p.Image); err != nil {
		return &UsageError{Input: "--gate-image", Value: p.Image, Rule: "must be repository:tag or repository@sha256:<digest>"}
	}
	// GitLab masks variables of 8 characters or more; a bypass is only
	// ever typed by machines, so it can be long.
	if p.Password != "" && len(p.Password) < 8 {
		return &UsageError{Input: "SHIPPER_PREVIEW_PASSWORD", Value: NotShown, Rule: "must be 8 characters or more (GitLab masks no shorter variable)"}
	}
	if p.Bypass != "" && len(p.Bypass) < 20 {
		return &UsageError{Input: "SHIPPER_PROTECTION_BYPASS", Value: NotShown, Rule: "must be 20 characters or more: head -c 24 /dev/urandom | base64"}
	}
	if p.OIDC != nil {
		// A deploy that does not bring the secret keeps the app's, which
		// the gate reads; only a first one must bring it.
		secret := cmp.Or(p.OIDCSecret, "(kept)")
		if err := gate.CheckOIDC(p.OIDC.args(), secret); err != nil {
			return &UsageError{Input: "sign-in with OpenID Connect", Value: NotShown, Rule: err.Error()}
		}
	}
	return nil
}

// hasProtection reports whether chart ch can run the gate: its values
// have the protection block (a chart of the user's may not).
func hasProtection(ch *chart.Chart) bool {
	_, ok := ch.Values["protection"]
	return ok
}

// protectionValues are the chart's protection block for commit n. With
// only previews protected, the gate also listens without a login on its
// public port, which the Service's public port targets and production's
// route alone reaches; production's host is the login host once
// production exists (loginHost).
func protectionValues(n Names, hosts Hosts, p *Protection, loginHost bool) map[string]any {
	if !p.on() {
		return map[string]any{"enabled": false}
	}
	v := map[string]any{
		"enabled": true, "image": p.Image, "port": GatePort, "public": p.Mode == ProtectPreviews, "publicPort": GatePublicPort,
		"secret": gateSecretName(n), "scheme": cmp.Or(hosts.Scheme, "https"), "loginHost": "", "domain": hosts.Domain,
	}
	// The domain always: a commit promoted later is the login host, whose
	// gate sends a browser back only to the app's hosts under it.
	if prod, err := hosts.Production(n); err == nil && loginHost && hosts.Domain != "" {
		v["loginHost"] = prod
	}
	if p.OIDC != nil {
		args := []any{}
		for _, a := range p.OIDC.args() {
			args = append(args, a)
		}
		v["oidcArgs"] = args
	}
	return v
}

// applyGate writes commit n's gate Secret (p on) from the app's, which it
// makes (with a new key) or updates (a new password or bypass, copied to
// every protected commit of the app) first. The caller holds n's Lease.
func (c *Configuration) applyGate(ctx context.Context, n Names, p *Protection) error {
	data, err := c.appGate(ctx, n, p)
	if err != nil {
		return err
	}
	if p.OIDC != nil && data[gate.OIDCSecretFile] == "" {
		return &UsageError{Input: "SHIPPER_OIDC_CLIENT_SECRET", Value: NotShown, Rule: "is empty, and the app has none yet: set it (masked) to the secret of the gate's application at --oidc-issuer"}
	}
	_, err = c.applyEnvSecretNamed(ctx, n, gateSecretName(n), data)
	return err
}

// removeGate removes commit n's gate Secret: its deploy turned protection
// off.
func (c *Configuration) removeGate(ctx context.Context, n Names) error {
	_, err := c.applyEnvSecretNamed(ctx, n, gateSecretName(n), nil)
	return err
}

// appGate reads the app's gate Secret, making it with a new key when
// there is none, and, when p brings a new password or bypass, writes it to
// every protected commit's copy and then to the app's Secret: a run cut
// off between the two left the app's Secret as it was, so the next one
// finds the change still to make, and makes it again.
func (c *Configuration) appGate(ctx context.Context, n Names, p *Protection) (map[string]string, error) {
	if err := c.ensureNamespace(ctx, n.ProductionNamespace, n, RoleProduction, nil, nil); err != nil {
		return nil, err
	}
	api := c.client.CoreV1().Secrets(n.ProductionNamespace)
	var data map[string]string
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := api.Get(ctx, appGateSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			data = map[string]string{gate.KeyFile: string(key), gate.PasswordFile: p.Password, gate.BypassFile: p.Bypass, gate.OIDCSecretFile: p.OIDCSecret}
			_, err = api.Create(ctx, gateSecretObject(n, n.ProductionNamespace, appGateSecret, data), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("secrets"), appGateSecret, err) // made meanwhile: read it
			}
			if err == nil {
				c.log.Info("made the app's gate key", "secret", n.ProductionNamespace+"/"+appGateSecret)
			}
			return secretErr(n.ProductionNamespace, appGateSecret, err)
		}
		if err != nil {
			return secretErr(n.ProductionNamespace, appGateSecret, err)
		}
		data = map[string]string{}
		for k, v := range s.Data {
			data[k] = string(v)
		}
		changed = false
		for file, given := range map[string]string{gate.PasswordFile: p.Password, gate.BypassFile: p.Bypass, gate.OIDCSecretFile: p.OIDCSecret} {
			if given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(data[file])) != 1 {
				data[file], changed = given, true
			}
		}
		if !changed {
			return nil
		}
		if err := c.copyGateToCommits(ctx, n, data); err != nil {
			return err
		}
		s.Data = secretData(data)
		_, err = api.Update(ctx, s, metav1.UpdateOptions{})
		return secretErr(n.ProductionNamespace, appGateSecret, err)
	})
	if err != nil {
		return nil, err
	}
	if changed {
		c.log.Info("the app's preview password or bypass changed: every session of the app ends")
	}
	return data, nil
}

// copyGateToCommits writes data to the gate Secret of every commit of n's
// app (this project's) that has one.
func (c *Configuration) copyGateToCommits(ctx context.Context, n Names, data map[string]string) error {
	spaces, err := c.previewNamespaces(ctx, n)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range spaces {
		if c.owned(&ns, n) != nil {
			continue // not this project's
		}
		name := ns.Name + "-gate" // a commit's namespace is its release's name
		api := c.client.CoreV1().Secrets(ns.Name)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Data = secretData(data)
			_, err = api.Update(ctx, s, metav1.UpdateOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, secretErr(ns.Name, name, err))
		}
	}
	return errors.Join(errs...)
}

// RotateGateKey gives n's app a new gate key: every session and share
// link of the app ends once its gates have read it (within a minute).
func (c *Configuration) RotateGateKey(ctx context.Context, n Names) error {
	if err := c.beginApp(ctx, n); err != nil {
		return err
	}
	api := c.client.CoreV1().Secrets(n.ProductionNamespace)
	s, err := api.Get(ctx, appGateSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &UsageError{Input: "app", Value: n.App, Rule: "has no protected preview yet: nothing to rotate"}
	}
	if err != nil {
		return secretErr(n.ProductionNamespace, appGateSecret, err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	data := map[string]string{}
	for k, v := range s.Data {
		data[k] = string(v)
	}
	data[gate.KeyFile] = string(key)
	// The copies first, the app's Secret last: a run cut off between them
	// is run again (docs/protection.md); new commits meanwhile get the old
	// key, which the rerun replaces everywhere.
	if err := c.copyGateToCommits(ctx, n, data); err != nil {
		return err
	}
	s.Data = secretData(data)
	if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		return secretErr(n.ProductionNamespace, appGateSecret, err)
	}
	return nil
}

// ShareLink is a URL that opens commit n's preview at url without a login
// until it expires (gate.ShareToken, with the app's key).
func (c *Configuration) ShareLink(ctx context.Context, n Names, url string, until time.Time) (string, error) {
	s, err := c.client.CoreV1().Secrets(n.ProductionNamespace).Get(ctx, appGateSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", &UsageError{Input: "app", Value: n.App, Rule: "has no protected preview: deploy it with --protect previews or all first"}
	}
	if err != nil {
		return "", secretErr(n.ProductionNamespace, appGateSecret, err)
	}
	return url + "/?" + gate.ShareParam + "=" + gate.ShareToken(s.Data[gate.KeyFile], n.AppPart, n.Short, until), nil
}

func gateSecretObject(n Names, ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy, LabelApp: n.AppPart}},
		Type:       corev1.SecretTypeOpaque, Data: secretData(data),
	}
}

func secretData(data map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		if v != "" {
			out[k] = []byte(v)
		}
	}
	return out
}

// secretErr names a Secret and the apiserver's reason, never its content:
// an apiserver's answer is cut to its reason; a connection error holds no
// data.
func secretErr(ns, name string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := err.(apierrors.APIStatus); ok {
		return fmt.Errorf("writing secret %s/%s: %s (%d)", ns, name, apierrors.ReasonForError(err), s.Status().Code)
	}
	return fmt.Errorf("writing secret %s/%s: %w", ns, name, err)
}

func (p *Protection) mode() Protect {
	if p == nil {
		return ""
	}
	return p.Mode
}

// lastProtected reports whether r's last revision ran the gate.
func (r *helmRelease) lastProtected() bool {
	if r.last == nil {
		return false
	}
	p, _ := r.last.Config["protection"].(map[string]any)
	on, _ := p["enabled"].(bool)
	return on
}

// requireCurrent refuses to route production to commit cn when its
// release is from before protection: its Service has no public port,
// which production's route now targets.
func requireCurrent(rec *record, cn Names) error {
	if rec.Protect != "" {
		return nil
	}
	return &UsageError{Input: "commit", Value: cn.Short, Rule: fmt.Sprintf(
		"was deployed by a shipper from before protected previews, and production's route targets a port its Service lacks: run `shipper deploy --sha %s` again, then promote", cn.Short)}
}

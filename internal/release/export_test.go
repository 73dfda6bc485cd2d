package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
)

// ChecksTakenAhead is how many of Helm's existence GETs took an answer
// sent ahead (checksAhead): for the package's external tests.
func ChecksTakenAhead(c *Configuration) int64 { return c.ahead.Taken() }

// InstallAhead starts the install of commit n running image ahead of its
// lock, as a deploy of a new commit does once its namespace is made
// (installAhead), in a namespace made for it here, and waits until the
// install's first write waits at its gate; then finish (when open) or
// abandon decides the gate. It returns the install's outcome, and an
// error when it never got to a write.
func InstallAhead(ctx context.Context, d *Deploy, n Names, image string, open bool) (*helmrelease.Release, error) {
	made, err := d.deployPlan(ctx, n, image, nil)
	if err != nil {
		return nil, err
	}
	if err := d.cfg.ensureNamespace(ctx, n.Namespace, n, RolePreview, map[string]string{LabelSHA: n.Short}, nil); err != nil {
		return nil, err
	}
	a := d.startInstall(ctx, &deployment{n: n, plan: made.plan, img: made.img})
	select {
	case <-a.gate.Waiting():
	case <-a.done:
		return nil, fmt.Errorf("the install ended before its first write: %v", a.err)
	case <-time.After(30 * time.Second):
		a.abandon()
		return nil, errors.New("the install never got to its first write")
	}
	if open {
		rel, _, err := a.finish(ctx)
		return rel, err
	}
	a.abandon()
	return a.rel, a.err
}

// ErrNotAhead is what an install started ahead and given up fails with.
var ErrNotAhead = errNotAhead

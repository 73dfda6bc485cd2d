package release

import (
	"errors"
	"fmt"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// repairPending marks a release left pending-install, pending-upgrade or
// pending-rollback as failed, so the next Helm action can proceed instead
// of stopping at "another operation is in progress". Call it only while
// holding the release's lock: then no other shipper is mid-operation and
// the pending state is a leftover of a killed process. It returns the last
// release record (nil when there is none).
func (c *Configuration) repairPending(cfg *action.Configuration, name string) (*release.Release, error) {
	last, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %q: %w", name, err)
	}
	if !last.Info.Status.IsPending() {
		return last, nil
	}
	was := last.Info.Status
	last.SetStatus(release.StatusFailed, fmt.Sprintf("marked failed by shipper: left %s by an interrupted operation", was))
	if err := cfg.Releases.Update(last); err != nil {
		return nil, fmt.Errorf("repairing release %q left %s: %w", name, was, err)
	}
	c.log.Warn("repaired a release left pending by an interrupted operation", "release", name, "revision", last.Version, "was", was)
	return last, nil
}

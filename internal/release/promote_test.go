package release_test

import (
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/release"
)

func TestPromoteRefusesUndeployedCommit(t *testing.T) {
	f := newDeployFixture(t)
	f.deployReady(t, shaA)
	if _, err := f.promote(t, shaA); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, sha, want string }{
		{"never deployed", shaB, "does not exist"},
		{"bad sha", "zzz", "invalid commit SHA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.promote(t, tc.sha)
			if !release.IsUsage(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tc.want)
			}
			if live := f.live(t); live.SHA != "aaaaaaaa" || live.Revision != 1 {
				t.Errorf("production changed to %s rev %d", live.SHA, live.Revision)
			}
		})
	}
	// A failed commit is not promotable either.
	rel := f.app + "-bbbbbbbb"
	stop := simulate(t, f.cs, rel, rel, rolloutImagePullBackOff)
	if _, err := f.deploy(t, shaB); err == nil {
		t.Fatal("deploy with ImagePullBackOff succeeded")
	}
	stop()
	if _, err := f.promote(t, shaB); !release.IsUsage(err) || !strings.Contains(err.Error(), "is failed") {
		t.Errorf("promote of a failed commit: err = %v, want a refusal saying it is failed", err)
	}
}

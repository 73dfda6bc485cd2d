package release

import (
	"context"
	"testing"
)

// TestSettingsReadCutByItsCallerIsNotKept: a deploy sends its read of the
// settings early, and may end (refused first) while it is in flight; a
// read its caller's context cut is not kept for the Configuration's life,
// the next operation reads the settings again.
func TestSettingsReadCutByItsCallerIsNotKept(t *testing.T) {
	env, _, _ := scratchNamespace(t, "settings")
	c, err := NewConfiguration(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	cut, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.settings(cut); err == nil {
		t.Fatal("settings with a cancelled context: no error")
	}
	if _, err := c.settings(context.Background()); err != nil {
		t.Errorf("settings after a cut read: %v, want them read again", err)
	}
}

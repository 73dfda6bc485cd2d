package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweepStaleRemovesDeadOwnersOnly plants one directory whose owner has
// exited and one owned by this process; only the first is removed.
func TestSweepStaleRemovesDeadOwnersOnly(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid

	plant := func(pid int) string {
		d, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	stale, live := plant(dead), plant(os.Getpid())

	sweepStale()

	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("directory of dead owner %d survived the sweep (stat: %v)", dead, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("directory of the live owner was removed: %v", err)
	}
}

func TestLabelValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"TestFoo", "TestFoo"},
		{"TestFoo/sub_case#01", "TestFoo_sub_case_01"},
		{"/-lead", "lead"},
		{string(make([]byte, 80)), ""},
		{"TestA/" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "TestA_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
	} {
		if got := labelValue(tc.in); got != tc.want {
			t.Errorf("labelValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

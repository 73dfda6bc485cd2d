package startgc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/shipper-dev/shipper/internal/hugeheap"
)

// kept holds an allocation the size of hugeheap's reservation through a
// collection, as a stale copy of its address does.
var kept []byte

func readGC() (cycles, live uint64) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestSettleCollectsOnlyWhenTheReservationWasKept: after a collection
// that kept a reservation-sized allocation, settle collects and the
// allocation is gone; after one that freed it, settle does not collect.
func TestSettleCollectsOnlyWhenTheReservationWasKept(t *testing.T) {
	kept = make([]byte, hugeheap.Reserve-2<<20) // as hugeheap's
	runtime.GC()
	before, live := readGC()
	if live < hugeheap.Reserve-2<<20 {
		t.Fatalf("live heap %d after a collection that kept %d bytes", live, hugeheap.Reserve-2<<20)
	}
	kept = nil
	settle()
	after, live := readGC()
	if after != before+1 || live >= hugeheap.Reserve/2 {
		t.Errorf("settle after a collection that kept the reservation: %d collections (want 1), live heap %d (want less than %d)", after-before, live, hugeheap.Reserve/2)
	}

	settle()
	if again, _ := readGC(); again != after {
		t.Errorf("settle after a collection that freed the reservation collected %d times, want 0", again-after)
	}
}

// TestPercentUnlessGOGCSet: a short command collects at percent unless
// GOGC says otherwise; an empty GOGC is Go's default, as unset (and as
// internal/hugeheap reads it), and gets percent too. A long command keeps
// Go's default.
func TestPercentUnlessGOGCSet(t *testing.T) {
	if os.Getenv("STARTGC_PRINT") != "" {
		fmt.Printf("percent=%d\n", debug.SetGCPercent(100))
		return
	}
	for _, tc := range []struct {
		gogc string // "-": unset
		args []string
		want int
	}{
		{gogc: "-", want: percent}, {gogc: "", want: percent}, {gogc: "300", want: 300},
		{gogc: "-", args: []string{"prune"}, want: 100},
	} {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestPercentUnlessGOGCSet$", "--"}, tc.args...)...)
		cmd.Env = []string{"STARTGC_PRINT=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOGC=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if tc.gogc != "-" {
			cmd.Env = append(cmd.Env, "GOGC="+tc.gogc)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOGC=%q %v: %v\n%s", tc.gogc, tc.args, err, out)
		}
		if want := fmt.Sprintf("percent=%d\n", tc.want); !strings.HasPrefix(string(out), want) {
			t.Errorf("GOGC=%q %v: the process printed %q, want %q first", tc.gogc, tc.args, out, want)
		}
	}
}

package startgc

import (
	"runtime"
	"runtime/metrics"
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

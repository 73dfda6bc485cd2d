// Package startgc sets the garbage collector of shipper's short commands
// before the rest of the program is initialised: imported for its side
// effect by cmd/shipper, it initialises before the packages of Helm,
// client-go and the Kubernetes API types (Go initialises ready packages in
// the order of their import paths, and this one needs only the runtime).
//
// Their initialisation allocates about 7 MB (API schemes, JSON schema
// meta-schemas), and a command's work as much again; at Go's default
// (GOGC=100, a first collection at a 4 MB heap) a rollback collected five
// times, three of them before main, about a fifth of its CPU time. With
// the heap allowed six times its live size (a first collection at 24 MB),
// a promote, rollback or deploy of the scale benchmark collects never, for
// 2-3 MiB more peak memory than Go's default (at four times, a deploy
// still collected once, 3-5 ms of CPU, for 0.5 MiB less). Not for the commands that run long or move much data (the gate,
// package, prune), nor when GOGC is set (to anything but empty, which is
// Go's default, as internal/hugeheap reads it).
//
// It also settles internal/hugeheap's reservation: the collection the
// reservation started must have freed it before the heavy initialisation
// allocates, or that allocates beside it on small pages and the reservation
// lives until a collection a short command never reaches. The last
// collection's live heap says (runtime/metrics reads it without stopping
// the world; runtime.ReadMemStats took a millisecond here); if it held the
// reservation, or no collection has ended yet, settle collects: 4 ms, in
// about one start in ten.
package startgc

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"github.com/shipper-dev/shipper/internal/hugeheap"
)

// percent is the GOGC of short commands.
const percent = 600

func init() {
	if hugeheap.Reserved() {
		settle()
	}
	if os.Getenv("GOGC") != "" { // empty is Go's default, as unset (and internal/hugeheap reads it so)
		return
	}
	if hugeheap.Long(os.Args[1:]) {
		return // the commands left at Go's default
	}
	debug.SetGCPercent(percent)
}

// settle collects if the last collection kept internal/hugeheap's
// reservation, or none has ended.
func settle() {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	// The reservation is most of Reserve; the live heap before the heavy
	// initialisation is a few MB without it.
	if s[0].Value.Uint64() == 0 || s[1].Value.Uint64() >= hugeheap.Reserve/2 {
		runtime.GC()
	}
}

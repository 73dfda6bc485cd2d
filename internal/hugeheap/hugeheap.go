// Package hugeheap backs the start of shipper's heap with transparent huge
// pages on a kernel that gives them only on request. Imported for its side
// effect by cmd/shipper, it initialises before Helm, client-go and the
// Kubernetes API types (it needs only the runtime and syscall, and Go
// initialises ready packages in the order of their import paths).
//
// Why: a short command's time is largely the kernel's. Their package
// initialisation allocates about 7 MB and a deploy as much again, and every
// 4 KiB page of it is a page fault the first time it is touched: about 2,900
// faults before main and 6,200 in a deploy, at 5-10 µs each on a virtual
// machine. A 2 MiB huge page takes one fault for 512 of them. With THP set
// to "always" (Red Hat's default) the kernel already backs Go's heap so;
// with "madvise" (Debian's and Ubuntu's) a range must ask for it with
// madvise(MADV_HUGEPAGE), and Go's runtime asks only for its own metadata.
//
// How: the runtime maps its heap in pieces as it grows, each piece a new
// mapping, so advice given to memory not yet mapped is lost. init makes the
// heap grow by [Reserve] at once with one large allocation (fresh memory
// the runtime knows is zero: nothing is touched), advises the range, and
// lets the allocation go. The collection that allocation starts (the heap
// is past Go's first 4 MB goal) frees it in the background, normally: it
// can see a stale copy of the address and keep it (one start in ten to
// five here), which internal/startgc, initialised before the heavy
// packages, finds and collects. The range then holds the next 64 MiB of
// the program's allocations, the first touch of each 2 MiB of it one
// fault. The heap's piece below it, where the runtime and the first
// packages allocated before init, is advised too and its pages collapsed
// into huge ones at once (MADV_COLLAPSE, Linux 6.1; the advice alone does
// nothing for 2 MiB already touched): the allocations that go on filling
// it take no faults either.
//
// It does nothing elsewhere than on Linux, when THP is "always" (nothing to
// do) or "never" (nothing to ask), with huge pages of another size than 2
// MiB, under GODEBUG=disablethp=1 (Go's own switch for keeping the heap
// off huge pages: the way to turn this off), with GOGC or GOMEMLIMIT set,
// under a limit on the address space or strict overcommit, where the
// process may not take huge pages, and for the commands that run long
// (Long): a process that lives for hours returns memory to the kernel a
// little at a time, which huge pages would undo. A fault in an advised
// range may compact memory to find a huge page (THP's "defrag" setting,
// "madvise" by default): on a host whose memory is fragmented that can
// cost more than it saves, and GODEBUG=disablethp=1 turns it off. Only
// cmd/shipper imports the package: not shipper-gate, which runs for a
// pod's life.
package hugeheap

// Reserve is how much the heap grows by and is advised: a deploy's
// allocations with room to spare; what is never touched costs no memory.
// The reservation itself is a huge page less.
const Reserve = 64 << 20

// long are shipper's commands that run long or move much data: a proxy
// for the life of a pod, a packaging of hundreds of megabytes, a prune of
// hundreds of previews.
var long = map[string]bool{"gate": true, "package": true, "prune": true}

// Long reports whether a command line holds one of them: a word anywhere,
// a flag's value too (then a short command is taken for a long one, and
// runs as Go's default).
func Long(args []string) bool {
	for _, a := range args {
		if long[a] {
			return true
		}
	}
	return false
}

package hugeheap

// Only runtime and syscall: a package this needs that sorts after it
// (strings, weak) would hold its initialisation back behind most others.
import (
	"syscall"
	"unsafe"
)

// madviseHugePage is MADV_HUGEPAGE, which the syscall package lacks.
const madviseHugePage = 14

var (
	reserved bool       // init grew the heap by Reserve
	advised  [2]uintptr // the range advised, [start, end), if it was
)

func init() {
	if !wanted() {
		return
	}
	pad()
	p := grow()
	reserved = true
	// The heap grew by whole 4 MiB chunks from the end of the one the
	// reservation starts in, and by more than the reservation: the rest is
	// mapped and free above it, where what is allocated until it is freed
	// goes. Advise that too. The kernel backs with huge pages each aligned
	// 2 MiB of the range that nothing has touched yet.
	end := (p + Reserve + chunk - 1) &^ (chunk - 1)
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, p, end-p, madviseHugePage); errno == 0 {
		advised = [2]uintptr{p, end}
	}
}

// pads hold the free pages between the heap's first allocations and the
// next huge page boundary, never touched, so that the reservation starts
// on the boundary: once it is freed the program's next allocations go to
// its lowest pages, which would otherwise share a huge page with what was
// allocated before and take small ones (500 faults in a deploy).
var pads [2][]byte

// pad allocates pads: a probe large enough to come from the heap's lowest
// free pages (a smaller one may come from a processor's page cache), then
// the rest of the way to the boundary.
func pad() {
	const probe = 128 << 10
	pads[0] = make([]byte, probe)
	q := uintptr(unsafe.Pointer(unsafe.SliceData(pads[0]))) + probe
	gap := (q+hugePage-1)&^(hugePage-1) - q
	if gap == 0 {
		return
	}
	if gap < probe {
		gap += hugePage
	}
	pads[1] = make([]byte, gap)
}

// hugePage is the size of a transparent huge page on x86-64 and arm64
// with 4 KiB pages; elsewhere the pads only waste a little address space.
const hugePage = 2 << 20

// chunk is the unit in which Go's heap grows on 64-bit platforms (the
// runtime's pallocChunkBytes).
const chunk = 4 << 20

// grow allocates the reservation and lets it go: its own frame, so that no
// pointer to it outlives it. A huge page less than Reserve, so that the
// heap grows by Reserve and leaves room above it.
//
//go:noinline
func grow() uintptr {
	b := make([]byte, Reserve-hugePage)
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// Reserved reports whether init grew the heap by Reserve, which
// internal/startgc then settles.
func Reserved() bool { return reserved }

// wanted reports whether the kernel backs the heap with huge pages only
// when asked, and Go was not told to keep it off them.
func wanted() bool {
	if v, _ := syscall.Getenv("GODEBUG"); contains(v, "disablethp=1") {
		return false
	}
	if Long(args()) {
		return false
	}
	fd, err := syscall.Open("/sys/kernel/mm/transparent_hugepage/enabled", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var buf [64]byte
	n, _ := syscall.Read(fd, buf[:])
	return n > 0 && contains(string(buf[:n]), "[madvise]")
}

// args is the command line after the program's name, read from
// /proc/self/cmdline: the os package, which holds it as os.Args, sorts
// after this one.
func args() []string {
	fd, err := syscall.Open("/proc/self/cmdline", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		b = append(b, buf[:n]...)
	}
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out[1:]
}

// contains is strings.Contains, here without the strings package.
func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

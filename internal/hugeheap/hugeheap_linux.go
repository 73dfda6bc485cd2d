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
	p := grow()
	reserved = true
	// The kernel backs with huge pages the whole aligned 2 MiB (on x86-64)
	// of the range that nothing has touched yet; the rest stays on small
	// pages.
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, p, Reserve, madviseHugePage); errno == 0 {
		advised = [2]uintptr{p, p + Reserve}
	}
}

// grow allocates Reserve bytes and lets them go: its own frame, so that no
// pointer to them outlives it.
//
//go:noinline
func grow() uintptr {
	b := make([]byte, Reserve)
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
	fd, err := syscall.Open("/sys/kernel/mm/transparent_hugepage/enabled", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	var buf [64]byte
	n, _ := syscall.Read(fd, buf[:])
	return n > 0 && contains(string(buf[:n]), "[madvise]")
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

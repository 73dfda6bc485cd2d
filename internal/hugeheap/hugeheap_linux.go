package hugeheap

// Only runtime and syscall: a package this needs that sorts after it
// (strings, weak) would hold its initialisation back behind most others.
import (
	"syscall"
	"unsafe"
)

// madviseHugePage is MADV_HUGEPAGE, and madviseCollapse MADV_COLLAPSE
// (Linux 6.1), which the syscall package lacks.
const (
	madviseHugePage  = 14
	madviseCollapse  = 25
	firstPieceAtMost = 8 << 20
)

var (
	reserved  bool       // init grew the heap by Reserve
	advised   [2]uintptr // the range advised, [start, end), if it was
	collapsed [2]uintptr // the range below it made huge pages, if it was
)

func init() {
	if !wanted() {
		return
	}
	pad()
	p := grow()
	reserved = true
	// The heap grew by Reserve from the end of the 4 MiB chunk the
	// reservation starts in, a huge page more than the reservation: that
	// page is mapped and free above it, where what is allocated until it
	// is freed goes. Advise it too, and no further (the heap may have grown
	// elsewhere). The kernel backs with huge pages each aligned 2 MiB of
	// the range that nothing has touched yet.
	end := (p + Reserve + hugePage - 1) &^ (hugePage - 1)
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, p, end-p, madviseHugePage); errno == 0 {
		advised = [2]uintptr{p, end}
	}
	collapseBelow(p)
}

// collapseBelow backs the heap's first piece, below the reservation that
// starts at p, with huge pages now: the runtime and the packages
// initialised before this one have touched some of its small pages
// already, so advice would not change it (the kernel gives a huge page
// only where nothing of its 2 MiB is mapped), and every later allocation
// there took a fault of its own (200-300 in a deploy). The piece (the
// mapping holding pads[0], read from /proc/self/maps, of at most
// firstPieceAtMost) is advised as the reservation is, for its 2 MiB that
// nothing has touched, and MADV_COLLAPSE copies what is in the others
// into huge pages at once; the pads and what was free come with them,
// zero: a few MiB more of memory. A kernel without MADV_COLLAPSE (before
// 6.1) refuses it, and only the advice is taken.
func collapseBelow(p uintptr) {
	lo, hi, ok := mappingOf(uintptr(unsafe.Pointer(unsafe.SliceData(pads[0]))))
	if !ok || hi > p || p-lo > firstPieceAtMost {
		return
	}
	lo = (lo + hugePage - 1) &^ (hugePage - 1)
	if lo >= p {
		return
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, lo, p-lo, madviseHugePage); errno != 0 {
		return
	}
	// EINVAL also says that a 2 MiB of the range had nothing to collapse
	// (nothing touched there yet: the advice covers it); the others were.
	syscall.Syscall(syscall.SYS_MADVISE, lo, p-lo, madviseCollapse)
	collapsed = [2]uintptr{lo, p}
}

// mappingOf is the mapping holding address a, from /proc/self/maps.
func mappingOf(a uintptr) (lo, hi uintptr, ok bool) {
	b, ok := file("/proc/self/maps")
	if !ok {
		return 0, 0, false
	}
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		lo, rest, ok1 := hex(line)
		if !ok1 || len(rest) == 0 || rest[0] != '-' {
			continue
		}
		hi, _, ok2 := hex(rest[1:])
		if ok2 && lo <= a && a < hi {
			return lo, hi, true
		}
	}
	return 0, 0, false
}

// indexByte is bytes.IndexByte, here without the bytes package.
func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// hex reads the hexadecimal number b starts with, and returns the rest.
func hex(b []byte) (v uintptr, rest []byte, ok bool) {
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | uintptr(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | uintptr(c-'a'+10)
		default:
			return v, b[i:], i > 0
		}
	}
	return v, nil, i > 0
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
// with 4 KiB pages, the only size wanted takes: with larger ones (32 MiB
// on 16 KiB pages) the first touch of the range would zero as much.
const hugePage = 2 << 20

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
// when asked and of the size pad aligns to, this process may take them,
// and nothing says to leave the heap alone:
//   - GODEBUG=disablethp=1, Go's own switch for keeping the heap off huge
//     pages (the last setting of it wins, as for Go), or harddecommit=1
//     (the runtime remaps freed memory, and the advice with it);
//   - GOGC or GOMEMLIMIT set: collections the reservation's is not the
//     first of, which internal/startgc could not tell;
//   - a command that runs long (Long), or a command line not read;
//   - a limit on the address space (the 64 MiB the heap grows by may be
//     the last it has) or strict overcommit (they are charged to it);
//   - THP disabled for the process (prctl PR_SET_THP_DISABLE, inherited).
func wanted() bool {
	v, _ := syscall.Getenv("GODEBUG")
	if setting(v, "disablethp") == "1" || setting(v, "harddecommit") == "1" {
		return false
	}
	if v, _ := syscall.Getenv("GOGC"); v != "" {
		return false
	}
	if v, _ := syscall.Getenv("GOMEMLIMIT"); v != "" {
		return false
	}
	if args, ok := args(); !ok || Long(args) {
		return false
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil || rl.Cur != ^uint64(0) {
		return false
	}
	if r, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTHPDisable, 0, 0); errno != 0 || r != 0 {
		return false
	}
	return read("/sys/kernel/mm/transparent_hugepage/enabled", "[madvise]") &&
		read("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "2097152\n") &&
		!read("/proc/sys/vm/overcommit_memory", "2")
}

// prGetTHPDisable is PR_GET_THP_DISABLE, which the syscall package lacks.
const prGetTHPDisable = 42

// read reports whether the file at path (a few bytes of /sys or /proc)
// holds want.
func read(path, want string) bool {
	b, ok := file(path)
	return ok && contains(string(b), want)
}

// file is the content of the file at path, and whether it was read.
func file(path string) ([]byte, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
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
	return b, len(b) > 0
}

// setting is the value GODEBUG gives key, its last setting: "" if none.
func setting(godebug, key string) string {
	val, start := "", 0
	for i := 0; i <= len(godebug); i++ {
		if i < len(godebug) && godebug[i] != ',' {
			continue
		}
		item := godebug[start:i]
		start = i + 1
		if len(item) > len(key) && item[:len(key)] == key && item[len(key)] == '=' {
			val = item[len(key)+1:]
		}
	}
	return val
}

// args is the command line after the program's name, read from
// /proc/self/cmdline: the os package, which holds it as os.Args, sorts
// after this one.
func args() ([]string, bool) {
	b, ok := file("/proc/self/cmdline")
	if !ok {
		return nil, false
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
		return nil, false
	}
	return out[1:], true
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

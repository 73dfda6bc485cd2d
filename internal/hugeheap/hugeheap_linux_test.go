package hugeheap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestReservationServesTheHeapFromHugePages: what init advised is where
// the next allocations land, and touching them takes huge pages.
func TestReservationServesTheHeapFromHugePages(t *testing.T) {
	if advised[0] == 0 {
		if wanted() {
			t.Fatal("THP is \"madvise\" here and GODEBUG does not turn it off, yet init advised nothing")
		}
		t.Skip("nothing to advise: THP is not \"madvise\" here (/sys/kernel/mm/transparent_hugepage/enabled), or GODEBUG has disablethp=1")
	}
	if !Reserved() || advised[1]-advised[0] != Reserve {
		t.Fatalf("reserved %v, advised %#x-%#x: want the %d MiB the heap grew by advised", Reserved(), advised[0], advised[1], Reserve>>20)
	}
	// What the heap mapped above the reservation is advised too: the
	// mapping holding its end is the one holding its start.
	if flags, _ := mapping(t, advised[1]-1); !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the mapping of the advised range's last byte %#x has VmFlags %q, without hg", advised[1]-1, flags)
	}
	if huge := uintptr(pmdSize(t)); huge != hugePage {
		t.Skipf("this kernel's huge pages are %d KiB, not the %d KiB the pads align to", huge>>10, hugePage>>10)
	}
	if advised[0]%hugePage != 0 {
		t.Errorf("the reservation starts at %#x, off a huge page boundary: the pads did not take the free pages below it", advised[0])
	}
	first := (advised[0] + hugePage - 1) &^ (hugePage - 1) // the first whole huge page
	// What internal/startgc does when the first collection kept the reservation.
	runtime.GC()

	b := make([]byte, 16<<20)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < first || p+uintptr(len(b)) > advised[1] {
		t.Fatalf("a fresh 16 MiB allocation is at %#x-%#x, outside the advised %#x-%#x", p, p+uintptr(len(b)), first, advised[1])
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	flags, huge := mapping(t, first)
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the mapping of %#x has VmFlags %q, without hg (MADV_HUGEPAGE)", first, flags)
	}
	if want := 7 * int(hugePage>>10); huge < want {
		t.Errorf("the mapping of %#x has %d kB in huge pages after 16 MiB in it were touched: want at least %d kB", first, huge, want)
	}
	runtime.KeepAlive(b)
}

// TestFirstPieceOnHugePages: the heap's piece below the reservation, which
// the runtime had touched before init, is advised too and what was in it
// copied into huge pages (MADV_COLLAPSE, Linux 6.1).
func TestFirstPieceOnHugePages(t *testing.T) {
	if advised[0] == 0 {
		t.Skip("nothing advised here (TestReservationServesTheHeapFromHugePages says why)")
	}
	if collapsed[0] == 0 {
		lo, hi, ok := mappingOf(uintptr(unsafe.Pointer(unsafe.SliceData(pads[0]))))
		t.Fatalf("the first piece (%#x-%#x, read %v) below the reservation at %#x was not advised", lo, hi, ok, advised[0])
	}
	if collapsed[1] != advised[0] || collapsed[0]%hugePage != 0 || advised[0]-collapsed[0] > firstPieceAtMost {
		t.Errorf("collapsed %#x-%#x, advised from %#x: want an aligned range of at most %d MiB ending where the reservation starts", collapsed[0], collapsed[1], advised[0], firstPieceAtMost>>20)
	}
	flags, huge := mapping(t, collapsed[1]-1)
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the mapping of %#x has VmFlags %q, without hg", collapsed[1]-1, flags)
	}
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err == nil && release(uts) < 601 {
		t.Skipf("kernel %d.%d: no MADV_COLLAPSE", release(uts)/100, release(uts)%100)
	}
	if huge < int(hugePage>>10) {
		t.Errorf("the first piece's mapping has %d kB in huge pages: want at least the %d kB the runtime had touched", huge, hugePage>>10)
	}
}

// release is the kernel's major*100+minor.
func release(uts syscall.Utsname) int {
	var maj, minor, part, field int
	for _, c := range uts.Release {
		switch {
		case c >= '0' && c <= '9':
			part = part*10 + int(c-'0')
		case c == '.' && field == 0:
			maj, part, field = part, 0, 1
		default:
			if field == 1 {
				minor = part
				return maj*100 + minor
			}
			return maj * 100
		}
	}
	return maj*100 + part
}

// TestHex: /proc/self/maps's addresses, read without strconv.
func TestHex(t *testing.T) {
	v, rest, ok := hex([]byte("7f0a1b2c3000-7f0a1b2c4000 rw-p"))
	if !ok || v != 0x7f0a1b2c3000 || string(rest) != "-7f0a1b2c4000 rw-p" {
		t.Errorf("hex = %#x %q %v", v, rest, ok)
	}
	if _, _, ok := hex([]byte("-1")); ok {
		t.Error("hex read a number from \"-1\"")
	}
}

// pmdSize is the kernel's transparent huge page size.
func pmdSize(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		t.Fatalf("hpage_pmd_size %q", b)
	}
	return n
}

// mapping reads /proc/self/smaps for the mapping holding p: its VmFlags
// and AnonHugePages (kB).
func mapping(t *testing.T, p uintptr) (flags string, hugeKB int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := strings.Cut(strings.Fields(line)[0], "-"); ok && !strings.HasSuffix(line, ":") && !strings.Contains(lo, ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = uint64(p) >= a && uint64(p) < b
				continue
			}
		}
		if !in {
			continue
		}
		if v, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			hugeKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			return strings.TrimSpace(v), hugeKB
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", p)
	return "", 0
}

// TestHeapLeftAloneWhenAsked: Go's own switch for keeping the heap off
// huge pages keeps this package off it too, and so does a command that
// runs long (Long) on the command line.
func TestHeapLeftAloneWhenAsked(t *testing.T) {
	if os.Getenv("HUGEHEAP_PRINT") != "" {
		fmt.Printf("advised=%v\n", Reserved() && advised[0] != 0)
		return
	}
	if !wanted() {
		t.Skip("THP is not \"madvise\" here, or this test's GODEBUG has disablethp=1: nothing is advised either way")
	}
	for _, tc := range []struct {
		godebug string
		args    []string
		want    bool
		env     string // another variable set
		ulimit  string // ulimit -v
	}{
		{env: "GOGC=600"}, {env: "GOMEMLIMIT=1GiB"}, {ulimit: "100000000"}, {ulimit: "unlimited", want: true},
		{want: true}, {godebug: "disablethp=1"}, {godebug: "madvdontneed=1,disablethp=1"}, {godebug: "disablethp=0", want: true},
		{godebug: "disablethp=1,disablethp=0", want: true}, {godebug: "harddecommit=1"},
		{args: []string{"prune"}}, {args: []string{"--timeout", "1m", "gate"}}, {args: []string{"deploy"}, want: true},
	} {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHeapLeftAloneWhenAsked$", "--"}, tc.args...)...)
		if tc.ulimit != "" {
			cmd = exec.Command("sh", append([]string{"-c", `ulimit -v "$0" && exec "$@"`, tc.ulimit}, cmd.Args...)...)
		}
		cmd.Env = []string{"HUGEHEAP_PRINT=1", "GODEBUG=" + tc.godebug}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GODEBUG=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GODEBUG=%s %s ulimit -v %s %v: %v\n%s", tc.godebug, tc.env, tc.ulimit, tc.args, err, out)
		}
		if want := fmt.Sprintf("advised=%v\n", tc.want); !strings.HasPrefix(string(out), want) {
			t.Errorf("GODEBUG=%s %s ulimit -v %s %v: the process printed %q, want %q first", tc.godebug, tc.env, tc.ulimit, tc.args, out, want)
		}
	}
}

func TestLong(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"deploy", "--app", "web"}, false},
		{[]string{"-v", "package", "--repository", "r"}, true},
		{[]string{"gate"}, true},
		{[]string{"prune", "--max-age", "72h"}, true},
		{nil, false},
	} {
		if got := Long(tc.args); got != tc.want {
			t.Errorf("Long(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		s, sub string
		want   bool
	}{
		{"always [madvise] never\n", "[madvise]", true},
		{"[always] madvise never\n", "[madvise]", false},
		{"", "[madvise]", false},
		{"x", "", true},
		{"madvdontneed=1,disablethp=1", "disablethp=1", true},
	} {
		if got := contains(tc.s, tc.sub); got != tc.want {
			t.Errorf("contains(%q, %q) = %v, want %v", tc.s, tc.sub, got, tc.want)
		}
	}
}

func TestSetting(t *testing.T) {
	for _, tc := range []struct{ godebug, key, want string }{
		{"", "disablethp", ""},
		{"disablethp=1", "disablethp", "1"},
		{"madvdontneed=1,disablethp=1", "disablethp", "1"},
		{"disablethp=1,disablethp=0", "disablethp", "0"},
		{"xdisablethp=1", "disablethp", ""},
		{"disablethp", "disablethp", ""},
		{"disablethp=", "disablethp", ""},
		{",disablethp=1,", "disablethp", "1"},
	} {
		if got := setting(tc.godebug, tc.key); got != tc.want {
			t.Errorf("setting(%q, %q) = %q, want %q", tc.godebug, tc.key, got, tc.want)
		}
	}
}

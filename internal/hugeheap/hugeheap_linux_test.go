package hugeheap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
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

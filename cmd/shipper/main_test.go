package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestHeapIsSetUpBeforeTheHeavyPackages: internal/hugeheap and then
// internal/startgc initialise before the packages whose initialisation
// allocates most (Helm's JSON schema library, client-go's scheme), as their
// docs need: an import that sorts late (strings, weak) in hugeheap would
// hold it back behind them. This package's test binary links what the
// command does, so its initialisation is the command's.
func TestHeapIsSetUpBeforeTheHeavyPackages(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// "init PKG @0.5 ms, 0.1 ms clock, 1234 bytes, 5 allocs"
	order := map[string]int{}
	allocated := map[string]int{} // bytes allocated by the inits before PKG's
	total := 0
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "init" {
			continue
		}
		order[f[1]], allocated[f[1]] = i, total
		n, err := strconv.Atoi(f[7])
		if err != nil {
			t.Fatalf("inittrace line %q: no byte count in its 8th field", line)
		}
		total += n
	}
	const (
		hugeheap = "github.com/shipper-dev/shipper/internal/hugeheap"
		startgc  = "github.com/shipper-dev/shipper/internal/startgc"
	)
	for _, pkg := range []string{hugeheap, startgc, "github.com/santhosh-tekuri/jsonschema/v6", "k8s.io/client-go/kubernetes/scheme"} {
		if _, ok := order[pkg]; !ok {
			t.Fatalf("GODEBUG=inittrace=1 printed no init of %s:\n%s", pkg, out)
		}
	}
	if order[hugeheap] > order[startgc] {
		t.Errorf("%s initialised after %s, which settles its reservation", hugeheap, startgc)
	}
	for _, heavy := range []string{"github.com/santhosh-tekuri/jsonschema/v6", "k8s.io/client-go/kubernetes/scheme"} {
		if order[startgc] > order[heavy] {
			t.Errorf("%s initialised after %s", startgc, heavy)
		}
	}
	if b := allocated[hugeheap]; b > 256<<10 {
		t.Errorf("the packages initialised before %s allocated %d bytes, want less than 256 KiB: it comes too late to back them with huge pages", hugeheap, b)
	}
}

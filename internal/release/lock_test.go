package release

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// TestLockGivesUpOnAnUnreachableAPIServer: a lock whose apiserver refuses
// every connection is given up with the reason once the apiserver has been
// unreachable for unreachableGrace, counted from the first failing
// request. The retrying transport spends its whole backoff on that
// request: counted from its end (as before), the job waited out the
// backoff twice, and a third time releasing the lock it never won (10.8 s
// here before, 4 s now; with the defaults ~16 s instead of ~32 s or more).
func TestLockGivesUpOnAnUnreachableAPIServer(t *testing.T) {
	// Shorter than the defaults (~16 s of retries, 10 s grace), in the same
	// relation: the grace is shorter than one request's retries.
	defer func(b wait.Backoff, g time.Duration) { transientBackoff, unreachableGrace = b, g }(transientBackoff, unreachableGrace)
	transientBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Steps: 5, Cap: 4 * time.Second} // 3.75 s
	unreachableGrace = 3 * time.Second

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()                                                                   // nothing listens there: every connection is refused
	rc, err := KubeOptions{URL: "https://" + addr, Insecure: true}.RESTConfig() // with the retrying transport
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConfiguration(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	ran := false
	err = c.withLock(ctx, "ns", "rel", func(context.Context) error { ran = true; return nil })
	took := time.Since(start)
	t.Logf("gave up after %v: %v", took.Round(10*time.Millisecond), err)
	if ran {
		t.Fatal("the operation ran without the lock")
	}
	if err == nil || !strings.Contains(err.Error(), "failed every request") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want the lock given up naming the unreachable apiserver", err)
	}
	// One request's retries (3.75 s) and the lock's tick, not two.
	if took > 6*time.Second {
		t.Errorf("gave up after %v, want about one request's retries (3.75 s)", took)
	}
}

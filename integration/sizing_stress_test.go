package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/shipper-dev/shipper/internal/testenv"
)

// simulateAvailable acts as the deployment controller and kubelet for
// the app's Deployments (the harness runs neither): each new generation
// is marked available at its replica count, so promote's size-up, which
// always waits, completes.
func simulateAvailable(t *testing.T, a *stressApp) {
	t.Helper()
	cs, err := a.env.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			list, err := cs.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: "shipper.dev/app=" + a.names.AppPart})
			if err != nil {
				continue
			}
			for i := range list.Items {
				d := &list.Items[i]
				if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == ptr.Deref(d.Spec.Replicas, 1) {
					continue
				}
				_ = testenv.MarkAvailable(ctx, cs, d) // a conflict: the next pass retries
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// sizes checks what production size should be once a promote has run to
// its end: the live commit at 2 replicas with production's Secret, every
// other commit at its preview's 1 without it, and the list of commits at
// production size naming the live one alone.
func (a *stressApp) sizes(when string, commits ...string) {
	a.t.Helper()
	cs, err := a.env.AdminClient()
	if err != nil {
		a.t.Fatal(err)
	}
	live := a.status(a.t).SHA
	for _, sha := range commits {
		n := a.commit(sha)
		d, err := cs.AppsV1().Deployments(n.Namespace).Get(context.Background(), n.Release, metav1.GetOptions{})
		if err != nil {
			a.t.Fatal(err)
		}
		_, serr := cs.CoreV1().Secrets(n.Namespace).Get(context.Background(), n.Release+"-env-production", metav1.GetOptions{})
		hasSecret := serr == nil
		if serr != nil && !apierrors.IsNotFound(serr) {
			a.t.Fatal(serr)
		}
		want, wantSecret := int32(1), false
		if sha[:8] == live {
			want, wantSecret = 2, true
		}
		if got := ptr.Deref(d.Spec.Replicas, 1); got != want || hasSecret != wantSecret {
			a.t.Errorf("%s: commit %s (live %s) runs %d replicas, production Secret %v; want %d, %v", when, sha[:8], live, got, hasSecret, want, wantSecret)
		}
	}
	list, err := cs.CoreV1().Secrets(a.names.ProductionNamespace).Get(context.Background(), a.names.ProductionRelease+"-sized", metav1.GetOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	var listed []string
	for k := range list.Data {
		listed = append(listed, k)
	}
	if !slices.Equal(listed, []string{live}) {
		a.t.Errorf("%s: listed at production size %v, want only the live %s", when, listed, live)
	}
}

// TestStressKillSizingAtFixedPoints kills promote with SIGKILL where
// production size changes: mid size-up (the incoming commit's revision
// pending), mid switch (production's revision pending), and while
// draining (the switch recorded, the outgoing commit still at production
// size). The next promote finishes the job: invariants hold, the live
// commit runs at production size, the other at its preview size.
func TestStressKillSizingAtFixedPoints(t *testing.T) {
	trials := pointTrials(t)
	a := newStressApp(t, "size")
	a.vars = with(a.vars, "SHIPPER_DRAIN_DELAY", "2s", "K8S_SECRET_DB_PASSWORD", "production-only")
	simulateAvailable(t, a)
	one, two := stressSHA(1), stressSHA(2)
	a.mustRun(one, "deploy")
	a.mustRun(two, "deploy")
	size := []string{"promote", "--set", "production.replicaCount=2"}
	a.mustRun(one, size...)
	a.sizes("after the first promote", one, two)
	prod := a.names
	for i := 0; i < trials; i++ {
		for _, point := range []string{"size-up", "switch", "drain"} {
			live := a.status(t).SHA
			from, to := one, two
			if live == two[:8] {
				from, to = two, one
			}
			p := recordAt(a.commit(to).Namespace, a.commit(to).Release, "pending-upgrade")
			switch point {
			case "switch":
				p = recordAt(prod.ProductionNamespace, prod.ProductionRelease, "pending-upgrade")
			case "drain":
				// The switch's revision recorded deployed (a change of an
				// existing record: the watch's first events are the records
				// as they are, the deployed one among them).
				p = recordAt(prod.ProductionNamespace, prod.ProductionRelease, "deployed")
				hit := p.hit
				p.hit = func(e watch.Event) bool { return e.Type == watch.Modified && hit(e) }
			}
			start := time.Now()
			a.signalAt(syscall.SIGKILL, p, to, size...)
			killed := time.Since(start)
			a.mustRun(to, size...)
			when := fmt.Sprintf("trial %d, promote of %s killed at %s (%s)", i, to[:8], point, p.name)
			t.Logf("%s after %s; next run %s", when, killed.Round(time.Millisecond), (time.Since(start) - killed).Round(time.Millisecond))
			a.invariants(when)
			a.sizes(when, from, to)
		}
	}
}

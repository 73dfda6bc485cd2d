package release

import (
	"sync"

	"helm.sh/helm/v3/pkg/kube"
)

// recordAside writes an install's first record (pending-install) beside
// the release's resources instead of before them, for a release opened
// fresh (helmRelease.fresh: a namespace and Lease this operation made, no
// record of it anywhere).
//
// Helm's install stores that record, then creates the resources, then
// stores the outcome over it: three round trips one after the other, the
// first with the record's compression on the path. Here Helm's Create of
// the record only drafts it (its JSON as of that moment: Helm goes on
// changing the release), and the record is sent when Helm creates the
// first resources, with them, when every one of them lives in the
// release's namespace; else before them, as Helm does. The outcome's write
// waits for it. The states stored are Helm's (pending-install, then the
// outcome); what changes is that a resource may exist a moment before the
// pending record does:
//
//   - killed in that moment, the namespace holds resources and no record,
//     a state the next deploy of the commit repairs: its install finds them
//     labelled and annotated for this release and adopts them (Helm's
//     existingResourceConflict), and a delete removes the namespace with
//     them. A resource outside the namespace, which a delete would leave,
//     is never created before the record (beside).
//   - when the pending record's write fails, the outcome is created in its
//     place (knownDriver.Update); when that fails too, no record holds the
//     resources created beside it, and the install deletes them and fails
//     with the write's error (helmRelease.unrecorded): the cluster as
//     Helm's order would have left it.
//
// Records above recordCompactAbove keep Helm's order: the only records
// that could approach a Secret's size limit are never created after the
// resources they list.
type recordAside struct {
	write     *recordWriter
	namespace string

	mu    sync.Mutex
	draft *recordDraft  // held: drafted, not sent
	key   string        // the record sent
	sent  chan struct{} // closed once its write is answered
	err   error         // its answer
}

// hold keeps d until the resources are created (beside) or the outcome
// written (settle); false when d is not written aside (too large, or a
// record held already), and the caller writes it.
func (a *recordAside) hold(d recordDraft) bool {
	if len(d.js) > recordCompactAbove {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draft != nil || a.sent != nil {
		return false
	}
	a.draft = &d
	return true
}

// beside sends the record held, if any, as resources are about to be
// created: while they are, when every one lives in the release's
// namespace; else (or for none: an Update's) first, its error returned
// (Helm's order: nothing is created without its record).
func (a *recordAside) beside(resources kube.ResourceList) error {
	d, _ := a.take()
	if d == nil {
		return nil
	}
	inside := len(resources) > 0
	for _, info := range resources {
		if info.Mapping == nil || !info.Namespaced() || info.Namespace != a.namespace {
			inside = false
		}
	}
	if !inside {
		a.send(*d)
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.err
	}
	go a.send(*d)
	return nil
}

// take takes the draft held, if any, for its caller to send (sent is
// then made), and returns sent: nil while no record was taken.
func (a *recordAside) take() (d *recordDraft, sent chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, a.draft = a.draft, nil
	if d != nil {
		a.key, a.sent = d.key, make(chan struct{})
	}
	return d, a.sent
}

// send writes d, answering sent.
func (a *recordAside) send(d recordDraft) {
	err := a.write.createDraft(d)
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
	close(a.sent)
}

// settle waits for the record's write, sending the draft held if the
// resources never came (an install that stopped before them, or one
// without resources), and returns the key of the record written aside
// ("": none) and the write's error.
func (a *recordAside) settle() (key string, err error) {
	d, sent := a.take()
	if sent == nil {
		return "", nil
	}
	if d != nil {
		a.send(*d)
	}
	<-sent
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.key, a.err
}

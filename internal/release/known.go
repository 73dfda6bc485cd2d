package release

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// knownDriver is the Secrets driver of one release's Helm configuration,
// answering from what shipper has read already, under the release's lock,
// the reads Helm's upgrade and rollback begin with: its history (Last,
// History: every revision listed and decoded, 20 for production, ~30 ms
// of CPU each time), its deployed revisions (DeployedAll) and a revision
// shipper holds (Get). Only while an action runs (helmRelease.know), and
// only when the records (their labels, read consistently under the lock)
// say what Helm's own reads would find: the newest revision is the one
// read whole, and the deployed one is among those held. Everything else,
// every write included, goes to the Secrets driver.
//
// Helm uses only the newest revision of a history (Last), and of a
// rollback's, also whether the target is in it: the history answered
// holds the revisions read whole, which are those. Each is answered as a
// copy, labelled as Helm's Query or Get labels it (a Query gives the
// record's labels, Get the release's own).
type knownDriver struct {
	driver.Driver
	// write, when set, writes the records (recordwrite.go); else the
	// driver does.
	write *recordWriter
	// aside, when set, writes an install's first record beside its
	// resources (recordaside.go).
	aside *recordAside

	mu     sync.Mutex
	active bool // else every read goes to the driver
	name   string
	held   []knownRelease
	other  bool // a deployed revision not held: DeployedAll is read
	// wrote is the last write of each record (by key): the status
	// written and the driver's answer (recorded).
	wrote map[string]knownWrite
}

// knownWrite is one write of a record: the status it wrote, and whether
// the apiserver said it was stored.
type knownWrite struct {
	status release.Status
	err    error
}

// Create is the driver's (or write's), remembered (recorded); with
// aside, held to be written beside the resources.
func (d *knownDriver) Create(key string, rls *release.Release) error {
	var err error
	if d.write == nil {
		err = d.Driver.Create(key, rls)
	} else if draft, derr := draftRecord(key, rls, "createdAt"); derr != nil {
		err = fmt.Errorf("create: failed to encode release %q: %w", rls.Name, derr)
	} else if d.aside != nil && d.aside.hold(draft) {
		return nil
	} else {
		err = d.write.createDraft(draft)
	}
	d.remember(key, rls, err)
	return err
}

// Update is the driver's (or write's), remembered (recorded). A record
// written aside is waited for first; when its write failed, this one is
// created in its place.
func (d *knownDriver) Update(key string, rls *release.Release) error {
	if d.aside != nil && d.write != nil {
		if aside, err := d.aside.settle(); aside == key && err != nil {
			err = d.write.create(key, rls)
			if errors.Is(err, driver.ErrReleaseExists) { // stored after all
				err = d.write.update(key, rls)
			}
			d.remember(key, rls, err)
			return err
		}
	}
	var err error
	if d.write != nil {
		err = d.write.update(key, rls)
	} else {
		err = d.Driver.Update(key, rls)
	}
	d.remember(key, rls, err)
	return err
}

func (d *knownDriver) remember(key string, rls *release.Release, err error) {
	w := knownWrite{err: err}
	if rls.Info != nil {
		w.status = rls.Info.Status
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wrote == nil {
		d.wrote = map[string]knownWrite{}
	}
	d.wrote[key] = w
}

// recorded reports whether the last write of rel's record, through this
// driver, stored rel's status: the apiserver answered it without error.
// Helm's install and upgrade log and drop an error of that final write
// (confirmRecorded): this says when there was none.
func (r *helmRelease) recorded(rel *release.Release) bool {
	d, ok := r.cfg.Releases.Driver.(*knownDriver)
	if !ok || rel == nil || rel.Info == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.wrote[releaseKey(rel.Name, rel.Version)]
	return ok && w.err == nil && w.status == rel.Info.Status
}

// releaseKey is the key of a release's revision in Helm's storage.
func releaseKey(name string, version int) string {
	return "sh.helm.release.v1." + name + ".v" + strconv.Itoa(version)
}

// knownRelease is a revision read whole with its record's labels.
type knownRelease struct {
	rel    *release.Release
	labels map[string]string
}

// know makes the driver answer for release r's revisions rels (the first
// its last one; a release without records has none) until the returned
// function is called. It answers nothing when the records disagree with
// what was read: a newest revision that did not decode (repairPending read
// Helm's Last instead), or one repaired since the records were listed.
func (r *helmRelease) know(rels ...*release.Release) func() {
	d, ok := r.cfg.Releases.Driver.(*knownDriver)
	if !ok {
		return func() {}
	}
	if len(r.records) == 0 && r.last == nil && len(rels) == 0 {
		return d.answer(r.name, nil, false) // Helm's install asks whether the name is taken
	}
	if len(r.records) == 0 || r.last == nil || r.records[0].Version != r.last.Version ||
		r.records[0].Labels["status"] != r.records[0].Status { // repaired: its record rewritten
		return func() {}
	}
	byVersion := map[int]record{}
	for _, rec := range r.records {
		byVersion[rec.Version] = rec
	}
	held := make([]knownRelease, 0, 1+len(rels))
	seen := map[int]bool{}
	for _, rel := range append([]*release.Release{r.last}, rels...) {
		rec, ok := byVersion[rel.Version]
		if !ok || rec.Labels == nil {
			return func() {}
		}
		if !seen[rel.Version] {
			seen[rel.Version] = true
			held = append(held, knownRelease{rel: rel, labels: rec.Labels})
		}
	}
	other := false
	for _, rec := range r.records {
		if rec.Status == release.StatusDeployed.String() && !seen[rec.Version] {
			other = true
		}
	}
	return d.answer(r.name, held, other)
}

// answer makes d answer for release name with held until the returned
// function is called.
func (d *knownDriver) answer(name string, held []knownRelease, other bool) func() {
	d.mu.Lock()
	d.active, d.name, d.held, d.other = true, name, held, other
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		d.active, d.held = false, nil
		d.mu.Unlock()
	}
}

// Query answers the history of the release held (name, owner helm) and
// its deployed revisions (and status deployed) when every deployed one is
// held; anything else is the driver's.
func (d *knownDriver) Query(labels map[string]string) ([]*release.Release, error) {
	d.mu.Lock()
	active, held, name, other := d.active, d.held, d.name, d.other
	d.mu.Unlock()
	if !active || labels["name"] != name || labels["owner"] != "helm" {
		return d.Driver.Query(labels)
	}
	status, byStatus := labels["status"]
	switch {
	case len(labels) == 2:
	case len(labels) == 3 && byStatus && status == release.StatusDeployed.String() && !other:
	default:
		return d.Driver.Query(labels)
	}
	var out []*release.Release
	for _, k := range held {
		if byStatus && k.rel.Info.Status.String() != status {
			continue
		}
		c := copyRelease(k.rel)
		c.Labels = maps.Clone(k.labels)
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, driver.ErrReleaseNotFound // as the Secrets driver answers an empty list
	}
	return out, nil
}

// Get answers a revision held; anything else is the driver's.
func (d *knownDriver) Get(key string) (*release.Release, error) {
	d.mu.Lock()
	active, held, name := d.active, d.held, d.name
	d.mu.Unlock()
	for _, k := range held {
		if !active {
			break
		}
		if key == releaseKey(name, k.rel.Version) {
			return copyRelease(k.rel), nil
		}
	}
	return d.Driver.Get(key)
}

// copyRelease is rel with its own Info and labels, which Helm's actions
// change on the revisions they read (superseded, failed).
func copyRelease(rel *release.Release) *release.Release {
	c := *rel
	if rel.Info != nil {
		info := *rel.Info
		c.Info = &info
	}
	c.Labels = maps.Clone(rel.Labels)
	return &c
}

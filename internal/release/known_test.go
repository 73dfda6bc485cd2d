package release

import (
	"errors"
	"strconv"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// TestKnownDriverAnswersAsTheStore: while an action runs, the revisions
// shipper read are what Helm's reads of the history, the deployed
// revision and a held revision find, as copies; anything the records say
// it does not hold goes to the store, and so does everything once the
// action is done.
func TestKnownDriverAnswersAsTheStore(t *testing.T) {
	mem := driver.NewMemory()
	var recs []record
	rels := map[int]*release.Release{}
	for v := 5; v >= 1; v-- {
		st := release.StatusSuperseded
		if v == 5 {
			st = release.StatusDeployed
		}
		rel := &release.Release{Name: "app-production", Namespace: "app-production", Version: v,
			Info: &release.Info{Status: st}, Labels: map[string]string{LabelSHA: "c" + strconv.Itoa(v)}}
		if err := mem.Create("sh.helm.release.v1.app-production.v"+strconv.Itoa(v), rel); err != nil {
			t.Fatal(err)
		}
		rels[v] = rel
		recs = append(recs, record{Version: v, Status: st.String(), Labels: map[string]string{
			"name": "app-production", "owner": "helm", "status": st.String(), "version": strconv.Itoa(v), LabelSHA: "c" + strconv.Itoa(v)}})
	}
	store := storage.Init(mem)
	kd := &knownDriver{Driver: store.Driver}
	store.Driver = kd
	r := &helmRelease{cfg: &action.Configuration{Releases: store}, name: "app-production", last: rels[5], records: recs}

	forget := r.know(rels[2])
	last, err := store.Last("app-production")
	if err != nil || last.Version != 5 || last.Labels["status"] != "deployed" || last.Labels[LabelSHA] != "c5" {
		t.Fatalf("Last = %+v, %v; want revision 5 with its record's labels", last, err)
	}
	last.Info.Status = release.StatusSuperseded
	if rels[5].Info.Status != release.StatusDeployed {
		t.Error("a change to the revision answered changed the one held")
	}
	hist, err := store.History("app-production")
	if err != nil || len(hist) != 2 {
		t.Fatalf("History = %d revisions, %v; want the two held", len(hist), err)
	}
	dep, err := store.Deployed("app-production")
	if err != nil || dep.Version != 5 {
		t.Fatalf("Deployed = %+v, %v; want revision 5", dep, err)
	}
	two, err := store.Get("app-production", 2)
	if err != nil || two.Version != 2 || two.Labels["status"] != "" {
		t.Fatalf("Get(2) = %+v, %v; want revision 2 with its own labels", two, err)
	}
	if three, err := store.Get("app-production", 3); err != nil || three.Version != 3 {
		t.Fatalf("Get(3), not held = %+v, %v; want the store's", three, err)
	}
	forget()
	if hist, err := store.History("app-production"); err != nil || len(hist) != 5 {
		t.Fatalf("History once forgotten = %d revisions, %v; want the store's 5", len(hist), err)
	}

	// A deployed revision not held: the store says which.
	recs[3].Status = release.StatusDeployed.String()
	forget = r.know()
	all, err := store.DeployedAll("app-production")
	forget()
	if err != nil || len(all) != 1 || all[0].Version != 5 {
		t.Fatalf("DeployedAll with another deployed record = %d, %v; want the store's answer", len(all), err)
	}

	// A newest revision that is not the one read: nothing answered.
	r.last = rels[4]
	forget = r.know()
	if hist, err := store.History("app-production"); err != nil || len(hist) != 5 {
		t.Fatalf("History with another last = %d revisions, %v; want the store's 5", len(hist), err)
	}
	forget()

	// A release without records: no history, as the store answers.
	empty := &helmRelease{cfg: r.cfg, name: "app-c0ffee00"}
	forget = empty.know()
	if _, err := store.History("app-c0ffee00"); err != driver.ErrReleaseNotFound {
		t.Errorf("History of a release without records: %v, want %v", err, driver.ErrReleaseNotFound)
	}
	if hist, err := store.History("app-production"); err != nil || len(hist) != 5 {
		t.Errorf("History of another release = %d revisions, %v; want the store's 5", len(hist), err)
	}
	forget()
}

// failingDriver refuses every Update, as an apiserver restarting when
// Helm writes a revision's final status.
type failingDriver struct{ driver.Driver }

func (failingDriver) Update(string, *release.Release) error { return errors.New("connection refused") }

// TestKnownDriverSaysWhatWasRecorded: a revision counts as recorded when
// its last write stored the status Helm returned; a write the apiserver
// refused, or one of another status, leaves confirmRecorded to read it
// back.
func TestKnownDriverSaysWhatWasRecorded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		driver driver.Driver
		status release.Status // of the release Helm returns
		want   bool
	}{
		{"stored", driver.NewMemory(), release.StatusDeployed, true},
		{"refused", failingDriver{driver.NewMemory()}, release.StatusDeployed, false},
		{"another status", driver.NewMemory(), release.StatusFailed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := storage.Init(tc.driver)
			store.Driver = &knownDriver{Driver: store.Driver}
			r := &helmRelease{cfg: &action.Configuration{Releases: store}, name: "app-1"}
			rel := &release.Release{Name: "app-1", Namespace: "app-1", Version: 1, Info: &release.Info{Status: release.StatusPendingInstall}}
			if err := store.Create(rel); err != nil {
				t.Fatal(err)
			}
			if r.recorded(rel) != true {
				t.Error("recorded after the create = false, want true")
			}
			rel.Info.Status = release.StatusDeployed
			_ = store.Update(rel) // Helm logs and drops its error
			returned := *rel
			returned.Info = &release.Info{Status: tc.status}
			if got := r.recorded(&returned); got != tc.want {
				t.Errorf("recorded = %v, want %v", got, tc.want)
			}
		})
	}
}

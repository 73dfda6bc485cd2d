package release

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func recordFixture(manifest string) *release.Release {
	return &release.Release{
		Name: "app-0123abcd", Namespace: "app-0123abcd", Version: 3,
		Info:     &release.Info{Status: release.StatusPendingUpgrade, Description: "Upgrade underway"},
		Chart:    &chart.Chart{Metadata: &chart.Metadata{Name: "preview-app", Version: "0.1.0", AppVersion: "0123abcd"}},
		Config:   map[string]any{"sha": "0123abcd"},
		Manifest: manifest,
		Labels:   map[string]string{LabelSHA: "0123abcd", LabelApp: "app"},
	}
}

// TestRecordsAreHelmsSecrets: a record recordWriter writes is the Secret
// Helm's own driver writes for the same release (name, type, labels but
// the time stamp's value) and Helm's driver reads it back whole; an
// update stamps modifiedAt and drops createdAt, as Helm's does.
func TestRecordsAreHelmsSecrets(t *testing.T) {
	ctx := context.Background()
	rel := recordFixture("kind: Service\n")
	key := releaseKey(rel.Name, rel.Version)

	ours := fake.NewClientset()
	w := recordWriter{secrets: ours.CoreV1().Secrets(rel.Namespace)}
	theirs := fake.NewClientset()
	helms := driver.NewSecrets(theirs.CoreV1().Secrets(rel.Namespace))

	for step, write := range []struct {
		ours, helm func(string, *release.Release) error
		stamp      string
	}{{w.create, helms.Create, "createdAt"}, {w.update, helms.Update, "modifiedAt"}} {
		if step == 1 {
			rel.Info.Status = release.StatusDeployed
		}
		if err := write.ours(key, rel); err != nil {
			t.Fatal(err)
		}
		if err := write.helm(key, rel); err != nil {
			t.Fatal(err)
		}
		got, err := ours.CoreV1().Secrets(rel.Namespace).Get(ctx, key, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := theirs.CoreV1().Secrets(rel.Namespace).Get(ctx, key, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || got.Name != want.Name {
			t.Errorf("%s: Secret %s of type %s, Helm's %s of type %s", write.stamp, got.Name, got.Type, want.Name, want.Type)
		}
		if got.Labels[write.stamp] == "" || len(got.Labels) != len(want.Labels) {
			t.Errorf("%s: labels %v, Helm's %v", write.stamp, got.Labels, want.Labels)
		}
		gl, wl := maps.Clone(got.Labels), maps.Clone(want.Labels)
		delete(gl, write.stamp)
		delete(wl, write.stamp)
		if !maps.Equal(gl, wl) {
			t.Errorf("%s: labels %v, Helm's %v", write.stamp, got.Labels, want.Labels)
		}
		// Helm's driver reads ours.
		back, err := driver.NewSecrets(ours.CoreV1().Secrets(rel.Namespace)).Get(key)
		if err != nil {
			t.Fatalf("Helm's driver cannot read shipper's record: %v", err)
		}
		if back.Name != rel.Name || back.Version != rel.Version || back.Info.Status != rel.Info.Status ||
			back.Manifest != rel.Manifest || back.Chart.Metadata.AppVersion != "0123abcd" || back.Config["sha"] != "0123abcd" {
			t.Errorf("%s: Helm's driver read back %+v", write.stamp, back)
		}
	}

	// A second create of the same record is Helm's ErrReleaseExists.
	if err := w.create(key, rel); !errors.Is(err, driver.ErrReleaseExists) {
		t.Errorf("create of an existing record: %v, want driver.ErrReleaseExists", err)
	}
}

// TestLargeRecordsCompressedAsHelmDoes: above recordCompactAbove a record
// is compressed as Helm's driver compresses it, so a chart whose records
// fit in a Secret under Helm's driver fit under shipper's (klauspost's
// best level came out 0.6% larger than the standard library's here: a
// record just under 1 MiB for Helm was over it for shipper); below it
// the default level is close to the best.
func TestLargeRecordsCompressedAsHelmDoes(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 4<<20; i++ {
		// Varied text, compressible as manifests are, not trivially.
		b.WriteString("- name: item-")
		b.WriteString(base64.RawStdEncoding.EncodeToString([]byte{byte(i), byte(i >> 8), byte(i * 7)}))
		b.WriteString("\n  value: \"")
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), i%40))
		b.WriteString("\"\n")
	}
	rel := recordFixture(b.String())
	js, err := json.Marshal(rel)
	if err != nil {
		t.Fatal(err)
	}
	def, err := gzipLevel(js, gzip.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	// What Helm's own driver stores for it.
	key := releaseKey(rel.Name, rel.Version)
	theirs := fake.NewClientset()
	if err := driver.NewSecrets(theirs.CoreV1().Secrets(rel.Namespace)).Create(key, rel); err != nil {
		t.Fatal(err)
	}
	helms, err := theirs.CoreV1().Secrets(rel.Namespace).Get(context.Background(), key, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := len(helms.Data["release"])
	if n := base64.StdEncoding.EncodedLen(len(def)); n <= recordCompactAbove || want >= n {
		t.Fatalf("fixture: %d bytes at the default level (want above %d), %d by Helm's driver", n, recordCompactAbove, want)
	}
	got, err := encodeRecord(js)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > want {
		t.Errorf("a %d-byte record encoded to %d bytes, Helm's driver's to %d", len(js), len(got), want)
	}
	smallJS, err := json.Marshal(recordFixture("kind: Service\n"))
	if err != nil {
		t.Fatal(err)
	}
	small, err := encodeRecord(smallJS)
	if err != nil {
		t.Fatal(err)
	}
	if len(small) > recordCompactAbove {
		t.Errorf("a small record encoded to %d bytes", len(small))
	}
}

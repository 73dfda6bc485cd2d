package integration

import (
	"strings"
	"testing"
)

// TestRollbackRefusesThePreviewsDatabase: a rollback, as a promote, never
// lets production run on a commit's preview database. Production's pods
// take production's Secret from the rollback job's K8S_SECRET_* variables,
// so without K8S_SECRET_DATABASE_URL the commit rolled back to would
// serve production from its own database. With a project's token: exit 2,
// one line naming the variable, production unchanged; with the database
// settings that is known before anything is read, without them (a
// rollback by hand) from the commit's Secret, before the switch. With
// production's DATABASE_URL the same rollback goes through.
func TestRollbackRefusesThePreviewsDatabase(t *testing.T) {
	a, _ := newDatabaseStressApp(t, "rbdb")
	simulateAvailable(t, a)
	one, two := stressSHA(1), stressSHA(2)
	a.mustRun(one, "deploy")
	a.mustRun(two, "deploy")
	restore := a.promoting()
	a.mustRun(one, "promote")
	a.mustRun(two, "promote")
	restore()
	before := a.status(t)
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"with the database settings", a.at(two)},
		{"without them", with(a.at(two), "SHIPPER_DATABASE_URL", "", "SHIPPER_DATABASE_TEMPLATE", "")},
	} {
		r := runBinary(t, tc.vars, "rollback")
		if r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "K8S_SECRET_DATABASE_URL") ||
			strings.Contains(r.stdout+r.stderr, "rbdb-admin-pw") || r.stdout != "" {
			t.Errorf("rollback %s, without production's DATABASE_URL: exit %d\nstdout: %s\nstderr: %s", tc.name, r.code, r.stdout, r.stderr)
		}
		if after := a.status(t); after.Revision != before.Revision || after.SHA != before.SHA {
			t.Errorf("rollback %s: refused, yet production is at revision %d (%s), was %d (%s)", tc.name, after.Revision, after.SHA, before.Revision, before.SHA)
		}
	}
	defer a.promoting()()
	if r := a.run(two, "rollback"); r.code != 0 || a.status(t).SHA != one[:8] {
		t.Errorf("rollback with production's DATABASE_URL: exit %d, production serves %s, want %s\n%s", r.code, a.status(t).SHA, one[:8], r.stderr)
	}
	a.invariants("after the rollback")
}

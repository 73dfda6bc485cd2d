package release

import "testing"

// TestPickRevisionSkipsWhatNeverServed: the default rollback target is
// the newest revision that served a commit other than the live one; a
// failed or cancelled promote in between is not it (helm rollback's
// "current minus one" would pick it and change nothing, or re-apply the
// commit that just failed).
func TestPickRevisionSkipsWhatNeverServed(t *testing.T) {
	rec := func(v int, status, sha string) record { return record{Version: v, Status: status, SHA: sha} }
	canary := func(v int, status, sha, canary string, weight int) record {
		return record{Version: v, Status: status, SHA: sha, Canary: canary, CanaryWeight: weight}
	}
	for _, c := range []struct {
		name    string
		hist    []record // newest first
		to      string
		wantRev int // 0: refused
	}{
		{"previous promotion", []record{rec(2, "deployed", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 1},
		{"twice undoes the first", []record{rec(3, "deployed", "aaaaaaaa"), rec(2, "superseded", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 2},
		{"a cancelled promote of the live commit before its retry",
			[]record{rec(3, "deployed", "bbbbbbbb"), rec(2, "failed", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 1},
		{"a failed promote of another commit, newest",
			[]record{rec(3, "failed", "cccccccc"), rec(2, "deployed", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 1},
		{"the same commit promoted twice",
			[]record{rec(3, "deployed", "bbbbbbbb"), rec(2, "superseded", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 1},
		{"only failed attempts before", []record{rec(2, "deployed", "bbbbbbbb"), rec(1, "failed", "aaaaaaaa")}, "", 0},
		{"first promotion", []record{rec(1, "deployed", "aaaaaaaa")}, "", 0},
		{"during a canary: the live commit alone, as before the canary",
			[]record{canary(4, "deployed", "bbbbbbbb", "cccccccc", 50), canary(3, "superseded", "bbbbbbbb", "cccccccc", 10), rec(2, "superseded", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 2},
		{"after a finished canary: the commit before, never a canary step",
			[]record{rec(4, "deployed", "cccccccc"), canary(3, "superseded", "bbbbbbbb", "cccccccc", 50), rec(2, "superseded", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "", 2},
		{"a canary whose live commit never served alone in the history kept",
			[]record{canary(2, "deployed", "bbbbbbbb", "cccccccc", 10), rec(1, "superseded", "aaaaaaaa")}, "", 0},
		{"a SHA: its newest whole promotion, not a canary step that kept it live",
			[]record{rec(4, "deployed", "dddddddd"), rec(3, "superseded", "cccccccc"), canary(2, "superseded", "aaaaaaaa", "cccccccc", 10), rec(1, "superseded", "aaaaaaaa")}, "aaaaaaaa", 1},
		{"an explicit revision is taken as asked", []record{rec(2, "deployed", "bbbbbbbb"), rec(1, "failed", "aaaaaaaa")}, "1", 1},
		{"a SHA: its newest promotion", []record{rec(3, "deployed", "bbbbbbbb"), rec(2, "superseded", "aaaaaaaa"), rec(1, "superseded", "aaaaaaaa")}, "aaaaaaa", 2},
		{"the live SHA", []record{rec(2, "deployed", "bbbbbbbb"), rec(1, "superseded", "aaaaaaaa")}, "bbbbbbbb", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickRevision(c.hist, c.to)
			switch {
			case c.wantRev == 0 && err == nil:
				t.Errorf("pickRevision(%q) = revision %d, want a refusal", c.to, got.Version)
			case c.wantRev == 0 && !IsUsage(err):
				t.Errorf("pickRevision(%q): %v, want a usage error (exit 2)", c.to, err)
			case c.wantRev != 0 && err != nil:
				t.Errorf("pickRevision(%q): %v, want revision %d", c.to, err, c.wantRev)
			case c.wantRev != 0 && got.Version != c.wantRev:
				t.Errorf("pickRevision(%q) = revision %d, want %d", c.to, got.Version, c.wantRev)
			}
		})
	}
}

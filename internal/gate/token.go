package gate

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Token kinds: what a token lets in.
const (
	kindApp    = "a" // every preview of the app (a login)
	kindCommit = "c" // one commit's preview (a share link)
)

// keys are the MAC keys a gate derives from its Config: cookies depend on
// the password too, so changing it logs everyone out; share links do not,
// so they work without it; a sign-in's state cookie (oidcstate.go) has a
// key of its own, so it can never pass for another token.
type keys struct {
	cookie, share, oidc []byte
}

func deriveKeys(key []byte, password string) keys {
	pw := sha256.Sum256([]byte(password))
	return keys{
		cookie: mac(key, "cookie-key", string(pw[:])),
		share:  mac(key, "share-key"),
		oidc:   mac(key, "oidc-state-key"),
	}
}

// mac is HMAC-SHA256 of parts, each ended by a NUL so no two part lists
// give one message.
func mac(key []byte, parts ...string) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// issue returns the token of kind for scope, valid until exp.
func issue(key []byte, purpose, kind, scope string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 36)
	sum := mac(key, purpose, kind, scope, e)
	return "v1." + kind + "." + e + "." + base64.RawURLEncoding.EncodeToString(sum)
}

// verify returns the kind of token if it is a valid, unexpired token for
// purpose and the scope its kind names (scopes[kind]), and its expiry.
func verify(key []byte, purpose, token string, scopes map[string]string, now time.Time) (kind string, exp time.Time, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return "", time.Time{}, false
	}
	scope, known := scopes[parts[1]]
	if !known {
		return "", time.Time{}, false
	}
	unix, err := strconv.ParseInt(parts[2], 36, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return "", time.Time{}, false
	}
	want := mac(key, purpose, parts[1], scope, parts[2])
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return "", time.Time{}, false
	}
	exp = time.Unix(unix, 0)
	if !now.Before(exp) {
		return "", time.Time{}, false
	}
	return parts[1], exp, true
}

// ShareToken is the token of a share link to commit sha's preview of app
// (shipper share): valid until exp, without the password, until the app's
// key is rotated.
func ShareToken(key []byte, app, sha string, exp time.Time) string {
	return issue(deriveKeys(key, "").share, "share", kindCommit, app+"/"+sha, exp)
}

// equal compares two secrets in constant time, lengths included.
func equal(a, b string) bool {
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

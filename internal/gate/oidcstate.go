package gate

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// A sign-in with the provider is bound to the browser that started it by a
// cookie: its state, nonce and PKCE verifier, and where to go after, signed
// with the gate's key (token.go) for this app and host, for 10 minutes.
// The callback takes it once: it clears the cookie, and remembers the
// state until it expires, so neither a replayed callback URL nor one
// replayed with the cookie opens a session (the provider refuses a second
// exchange of a code too).

const (
	oidcCookieName = "shipper-oidc"
	// oidcStateTTL is how long a user may take at the provider.
	oidcStateTTL = 10 * time.Minute
)

// oidcState is one sign-in in progress.
type oidcState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

func newOIDCState(next string) (oidcState, error) {
	var b [2][32]byte
	for i := range b {
		if _, err := rand.Read(b[i][:]); err != nil {
			return oidcState{}, err
		}
	}
	return oidcState{
		State: base64.RawURLEncoding.EncodeToString(b[0][:]), Nonce: base64.RawURLEncoding.EncodeToString(b[1][:]),
		Verifier: oauth2.GenerateVerifier(), Next: next,
	}, nil
}

func (g *Gate) oidcCookieName() string {
	if g.cfg.Secure {
		return securePrefix + oidcCookieName
	}
	return oidcCookieName
}

// oidcScope is what a state cookie's MAC covers besides its expiry: the
// app, the host it was set for and its content.
func (g *Gate) oidcScope(host, payload string) map[string]string {
	return map[string]string{kindApp: g.cfg.App + "|" + host + "|" + payload}
}

func (g *Gate) setOIDCCookie(w http.ResponseWriter, r *http.Request, st oidcState, now time.Time) {
	b, _ := json.Marshal(st)
	payload := base64.RawURLEncoding.EncodeToString(b)
	exp := now.Add(oidcStateTTL)
	// SameSite=Lax: the provider's redirect back is a top-level GET, which
	// carries it; nothing cross-site else does.
	http.SetCookie(w, &http.Cookie{
		Name: g.oidcCookieName(), Value: payload + "." + issue(g.keys.oidc, "oidc-state", kindApp, g.oidcScope(r.Host, payload)[kindApp], exp),
		Path: "/", Expires: exp.UTC(), MaxAge: int(oidcStateTTL.Seconds()), HttpOnly: true, Secure: g.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

func (g *Gate) clearOIDCCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: g.oidcCookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: g.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

// oidcCookie returns the sign-in r's state cookie holds, if it is valid
// for this app and host.
func (g *Gate) oidcCookie(r *http.Request, now time.Time) (oidcState, bool) {
	c, err := r.Cookie(g.oidcCookieName())
	if err != nil {
		return oidcState{}, false
	}
	payload, token, ok := strings.Cut(c.Value, ".")
	if !ok {
		return oidcState{}, false
	}
	if _, _, ok := verify(g.keys.oidc, "oidc-state", token, g.oidcScope(r.Host, payload), now); !ok {
		return oidcState{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var st oidcState
	if err != nil || json.Unmarshal(b, &st) != nil || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return oidcState{}, false
	}
	return st, true
}

// onceSet remembers keys until they expire: first reports whether key is
// new. Past maxClients entries it forgets the expired ones, and if none
// has, starts anew (the cookie is cleared on use and the provider refuses
// a code twice: the memory is a third lock, not the only one).
type onceSet struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (s *onceSet) first(key string, exp, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil || len(s.seen) >= maxClients {
		for k, e := range s.seen {
			if !now.Before(e) {
				delete(s.seen, k)
			}
		}
		if s.seen == nil || len(s.seen) >= maxClients {
			s.seen = map[string]time.Time{}
		}
	}
	if e, ok := s.seen[key]; ok && now.Before(e) {
		return false
	}
	s.seen[key] = exp
	return true
}

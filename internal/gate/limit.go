package gate

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login attempts allowed: per client, a burst of 10 then one every 6 s;
// per app (every client together, so a botnet gains little), a burst of
// 100 then 2 a second.
const (
	clientBurst = 10
	clientEvery = 6 * time.Second
	appBurst    = 100
	appEvery    = 500 * time.Millisecond
	// maxClients bounds the memory of per-client buckets: past it the
	// table starts anew (a client then gets a fresh burst, while the app's
	// bucket still holds).
	maxClients = 10000
)

type limiter struct {
	mu      sync.Mutex
	app     *rate.Limiter
	clients map[string]*rate.Limiter
}

func newLimiter() *limiter {
	return &limiter{app: rate.NewLimiter(rate.Every(appEvery), appBurst), clients: map[string]*rate.Limiter{}}
}

// allow reports whether client may try a password now, and counts it.
func (l *limiter) allow(app, client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxClients {
			l.clients = map[string]*rate.Limiter{}
		}
		c = rate.NewLimiter(rate.Every(clientEvery), clientBurst)
		l.clients[client] = c
	}
	if !c.AllowN(now, 1) {
		return false
	}
	return l.app.AllowN(now, 1)
}

// client is who r comes from: the last X-Forwarded-For hop (the one the
// router appended; earlier ones are the client's to write), else the peer.
// The NetworkPolicy of shipper's namespaces admits only the router and the
// namespace's own pods, so the peer is the router.
func client(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(xff[len(xff)-1], ",")
		if last := strings.TrimSpace(hops[len(hops)-1]); last != "" {
			return last
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

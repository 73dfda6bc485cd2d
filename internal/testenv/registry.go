package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a running CNCF distribution registry that requires HTTP basic
// auth. It serves plain HTTP on 127.0.0.1, which go-containerregistry and
// containerd treat as an insecure local registry.
type Registry struct {
	// Host is "127.0.0.1:<port>", the registry part of image references.
	Host string
	// Username and Password are accepted by the registry; any other
	// password is refused with 401.
	Username string
	Password string
	// LogPath is the registry's log, access log included: one line per
	// request, which tests count to prove what was (not) uploaded.
	LogPath string

	proc *process
}

// Repository returns "<host>/<name>", a repository on this registry.
func (r *Registry) Repository(name string) string { return r.Host + "/" + name }

// registryConfig is distribution's configuration (v0.1 format).
const registryConfig = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%d
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: shipper-testenv
    path: %s
`

// startRegistry runs docker-registry with one bcrypt htpasswd user.
func startRegistry(ctx context.Context, dir string) (*Registry, error) {
	bin, err := registryBinary()
	if err != nil {
		return nil, err
	}
	user, password := "shipper", randomToken()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, err
	}
	storage := filepath.Join(dir, "registry")
	var lastErr error
	for range startAttempts {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(dir, "registry.yml")
		cfg := fmt.Sprintf(registryConfig, storage, ports[0], randomToken(), htpasswd)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		p, err := startProcess(dir, "registry", bin, "serve", cfgPath)
		if err != nil {
			return nil, err
		}
		host := fmt.Sprintf("127.0.0.1:%d", ports[0])
		// An anonymous /v2/ answers 401 once the registry serves, with auth on.
		err = waitHTTP(ctx, p, http.DefaultClient, "http://"+host+"/v2/", http.StatusUnauthorized, 30*time.Second)
		if err == nil {
			return &Registry{Host: host, Username: user, Password: password, LogPath: p.log, proc: p}, nil
		}
		p.stop(0)
		lastErr = err
	}
	return nil, lastErr
}

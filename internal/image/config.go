package image

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// appendApp adds the app layer to base and sets the config: entrypoint,
// cmd, workdir, user, port, env (APP_VERSION and COMMIT_SHA always), OCI
// labels, and the same keys as manifest annotations.
func appendApp(s Spec, layer *fileLayer, base v1.Image, baseName string, baseDigest v1.Hash) (v1.Image, error) {
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: layer.comp.mediaType(),
		History: v1.History{
			CreatedBy: "shipper package " + s.Workdir,
			Created:   v1.Time{Time: s.Created},
			Comment:   "app layer",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	c := &cf.Config
	c.WorkingDir = s.Workdir
	if len(s.Entrypoint) > 0 {
		c.Entrypoint = s.Entrypoint
	}
	if len(s.Cmd) > 0 {
		c.Cmd = s.Cmd
	}
	if s.User != "" {
		c.User = s.User
	}
	if s.Port != 0 {
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[strconv.Itoa(s.Port)+"/tcp"] = struct{}{}
	}
	env := append([]string{}, s.Env...)
	if s.ShortSHA != "" {
		env = append(env, "APP_VERSION="+s.ShortSHA)
	}
	if s.SHA != "" {
		env = append(env, "COMMIT_SHA="+s.SHA)
	}
	c.Env = mergeEnv(c.Env, env)
	ann := annotations(s, baseName, baseDigest)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	for k, v := range ann {
		c.Labels[k] = v
	}
	cf.Created = v1.Time{Time: s.Created}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, ann).(v1.Image), nil
}

// annotations are the OCI keys describing the commit and its base.
func annotations(s Spec, baseName string, baseDigest v1.Hash) map[string]string {
	ann := map[string]string{AnnotationCreated: s.Created.Format(time.RFC3339)}
	if s.SHA != "" {
		ann[AnnotationRevision] = s.SHA
	}
	if s.Source != "" {
		ann[AnnotationSource] = s.Source
	}
	if baseName != "" {
		ann[AnnotationBaseName] = baseName
	}
	if baseDigest != (v1.Hash{}) {
		ann[AnnotationBaseDigest] = baseDigest.String()
	}
	return ann
}

// mergeEnv overrides base's variables with add's, keeping base's order.
func mergeEnv(base, add []string) []string {
	idx := map[string]int{}
	out := append([]string{}, base...)
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		idx[k] = i
	}
	for _, e := range add {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := idx[k]; ok {
			out[i] = e
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	return out
}

func parsePlatforms(ps []string) ([]v1.Platform, error) {
	var out []v1.Platform
	for _, s := range ps {
		for _, one := range strings.Split(s, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			p, err := v1.ParsePlatform(one)
			if err != nil || p.OS == "" || p.Architecture == "" {
				return nil, &InputError{Path: "platform " + one, Err: errors.New("must be os/arch[/variant], like linux/amd64")}
			}
			out = append(out, *p)
		}
	}
	return out, nil
}

func anyMatch(want []v1.Platform, p v1.Platform) bool {
	for _, w := range want {
		if w.OS == p.OS && w.Architecture == p.Architecture && (w.Variant == "" || w.Variant == p.Variant) {
			return true
		}
	}
	return false
}

// baseName is the base reference as OCI's base.name wants it: fully
// qualified, by tag (or digest when given so).
func baseName(ref name.Reference) string { return ref.Name() }

// describe turns registry errors into what a CI log reader needs: not
// found, or credentials refused. It never includes credentials.
func describe(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return err
	}
	switch te.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &RegistryError{Status: te.StatusCode, Msg: "credentials refused", Err: err}
	case http.StatusNotFound:
		return &RegistryError{Status: te.StatusCode, Msg: "not found", Err: err}
	}
	return err
}

// RegistryError is a registry's refusal: not found, or credentials refused.
type RegistryError struct {
	Status int
	Msg    string
	Err    error
}

func (e *RegistryError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }
func (e *RegistryError) Unwrap() error { return e.Err }

// Unauthorized reports whether err is a registry refusing credentials.
func Unauthorized(err error) bool {
	var re *RegistryError
	return errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden)
}

// NotFound reports whether err is a registry saying the image is missing.
func NotFound(err error) bool {
	var re *RegistryError
	return errors.As(err, &re) && re.Status == http.StatusNotFound
}

package release

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/util/validation"
)

// NotShown is the Value of a UsageError whose input may hold a secret,
// quoted in the input's place: chart values (a schema refusal names the
// key and the rule), an --env pair, a --url-scheme. A UsageError quotes
// its Value only when the input is a name or a reference shipper checks
// and never a secret: an app name, a SHA, an image, a chart or values
// file path, a host, an ingress class, a revision, a time, an address.
const NotShown = "(not shown)"

// Image is an image reference split the way the chart wants it. The
// release engine treats it as a string: it never talks to a registry.
type Image struct {
	Repository, Tag, Digest string
}

// ParseImage splits "repo[:tag][@sha256:...]".
func ParseImage(ref string) (Image, error) {
	var img Image
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, img.Digest = rest[:i], rest[i+1:]
		if !strings.HasPrefix(img.Digest, "sha256:") || len(img.Digest) != len("sha256:")+64 ||
			strings.Trim(img.Digest[len("sha256:"):], "0123456789abcdef") != "" {
			return Image{}, &UsageError{Input: "image", Value: ref, Rule: "a digest must be sha256: and 64 lowercase hex characters"}
		}
	}
	// A ":" after the last "/" starts the tag; one before it is a port.
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, img.Tag = rest[:i], rest[i+1:]
	}
	img.Repository = rest
	if img.Repository == "" || strings.ContainsAny(ref, " \t\n") || img.Tag == "" && img.Digest == "" {
		return Image{}, &UsageError{Input: "image", Value: ref, Rule: "must be repository:tag or repository@sha256:<digest>"}
	}
	if !registryName(img.Repository, img.Tag) {
		return Image{}, &UsageError{Input: "image", Value: ref, Rule: "must name an image as a registry does: an optional registry host[:port]/, " +
			"then a repository of lowercase letters, digits and _ - . /, and a tag of letters, digits and _ - ."}
	}
	return img, nil
}

// registryName reports whether repository and tag follow the naming rules
// that go-containerregistry applies when shipper resolves or pushes an
// image, so a name the registry step would refuse is refused offline,
// before any request: the first path element is the registry when it is
// localhost or has a "." or ":", and must be a URI authority; the rest is
// 1 to 255 of [a-z0-9_./-]; a tag 1 to 128 of [A-Za-z0-9_.-].
func registryName(repository, tag string) bool {
	const (
		repoChars = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
		tagChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
	)
	repo := repository
	if reg, rest, ok := strings.Cut(repository, "/"); ok && (reg == "localhost" || strings.ContainsAny(reg, ".:")) {
		if u, err := url.Parse("//" + reg); err != nil || u.Host != reg {
			return false
		}
		repo = rest
	}
	if repo == "" || len(repo) > 255 || strings.Trim(repo, repoChars) != "" {
		return false
	}
	return tag == "" || len(tag) <= 128 && strings.Trim(tag, tagChars) == ""
}

// String is the reference the chart renders: the digest wins over the tag.
func (i Image) String() string {
	if i.Digest != "" {
		return i.Repository + "@" + i.Digest
	}
	return i.Repository + ":" + i.Tag
}

// previewValues are the values shipper owns for a commit's release; they
// override whatever the user gave for the same keys.
func previewValues(n Names, host, url string, img Image, pullSecret, envSecret string) map[string]any {
	v := map[string]any{
		// Always shipper's: values cannot point envFrom at another Secret.
		"envSecret": map[string]any{"name": envSecret, "version": ""},
		"mode":      "preview",
		"url":       url,
		"app":       n.AppPart,
		"sha":       n.SHA,
		"shortSha":  n.Short,
		"image": map[string]any{
			"repository": img.Repository,
			"tag":        img.Tag,
			"digest":     img.Digest,
		},
		"ingress": map[string]any{"host": host},
	}
	if pullSecret != "" {
		v["imagePullSecrets"] = []any{pullSecret}
	}
	return v
}

// productionValues route host to the preview release of n.
func productionValues(n Names, host, url string) map[string]any {
	return map[string]any{
		"mode":     "production",
		"url":      url,
		"app":      n.AppPart,
		"sha":      n.SHA,
		"shortSha": n.Short,
		"production": map[string]any{
			"host": host,
			"target": map[string]any{
				"release":   n.Release,
				"namespace": n.Namespace,
				"sha":       n.SHA,
			},
			// Always shipper's: a values file cannot send production's
			// requests to a backend of its choosing.
			"canary": map[string]any{"release": "", "namespace": "", "sha": "", "weight": 0},
		},
	}
}

// mergeValues returns base with over merged in, recursively; over wins.
// Neither input is modified.
func mergeValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if om, ok := v.(map[string]any); ok {
			if bm, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// ParseValues merges values files and --set expressions the way helm's
// -f and --set do (later ones win). Its errors name the file or the keys,
// never a value: a --set holds secrets (env.DB_PASSWORD=...), and Helm's
// own messages quote whole expressions.
func ParseValues(files, sets []string) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range files {
		v, err := (&values.Options{ValueFiles: []string{f}}).MergeValues(getter.Providers{})
		if err != nil {
			line := ""
			if m := yamlLine.FindString(err.Error()); m != "" {
				line = " (" + m + ")"
			}
			return nil, &UsageError{Input: "values file", Value: f, Rule: "must be readable YAML holding a map" + line}
		}
		base = mergeValues(base, v)
	}
	for i, set := range sets {
		if err := strvals.ParseInto(set, base); err != nil {
			return nil, &UsageError{Input: fmt.Sprintf("--set #%d", i+1), Value: maskSet(set),
				Rule: "must be KEY=VALUE, or several joined by commas, as helm --set (values are not shown)"}
		}
	}
	return base, nil
}

var yamlLine = regexp.MustCompile(`line \d+`)

// CheckIngressClass refuses an IngressClass name the apiserver refuses in
// an Ingress (a DNS-1123 subdomain), before anything is installed with it.
func CheckIngressClass(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); name != "" && len(errs) > 0 {
		return &UsageError{Input: "--ingress-class", Value: name, Rule: errs[0]}
	}
	return nil
}

// maskSet shows where a --set expression starts and nothing more: its
// first key. Anything after the first "=" may be a value, and so may a
// bare item after a comma ("env.A=s3cret,tail" breaks at "tail", which is
// the end of the secret): "env.A=s3cret,broken" -> "env.A=…".
func maskSet(s string) string {
	key, _, found := strings.Cut(s, "=")
	if !found || strings.ContainsAny(key, ",\\") {
		return "…"
	}
	return key + "=…"
}

package release

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits that every generated name must fit.
const (
	// maxReleaseName is Helm's limit on release names.
	maxReleaseName = 53
	// productionSuffix ends the production release and namespace names.
	productionSuffix = "production"
	// shortSHALen is how much of a commit SHA names a preview: GitLab's
	// CI_COMMIT_SHORT_SHA length.
	shortSHALen = 8
	// maxAppPart keeps "<app>-production" within Helm's 53 characters;
	// "<app>-<8 hex>" and every host label then fit too.
	maxAppPart = maxReleaseName - 1 - len(productionSuffix)
	// hashLen is the length of the hash that keeps truncated names apart.
	hashLen = 6
)

// Names are the Kubernetes and Helm names of one app and, when a SHA was
// given, one of its commits. NewNames is the only constructor: the same
// inputs always give the same names.
type Names struct {
	// App is the app's DNS-1123 slug, as given to NewNames after slugging.
	App string
	// AppPart is App, truncated with a hash suffix when too long for names.
	AppPart string
	// SHA is the commit SHA, lowercased; Short its first 8 characters (or
	// all of it when shorter).
	SHA, Short string
	// Release and Namespace name the commit's preview release (equal).
	Release, Namespace string
	// ProductionRelease and ProductionNamespace name production (equal).
	ProductionRelease, ProductionNamespace string
	// Ref is the branch or tag slug given to WithRef; RefPart is Ref as
	// the {ref} of a host (shortened so "<app>--<ref>" is one DNS label);
	// AliasRelease is the release of its alias, "<app>-ref-<ref>", which
	// lives in ProductionNamespace (alias.go).
	Ref, RefPart, AliasRelease string
	// routeRole is the role of the routing release ProductionRelease
	// names: RoleProduction, or RoleAlias in the view asAlias returns.
	routeRole string
}

// NewNames validates and slugs app and validates sha ("" for operations on
// the app as a whole, like promote's production side or list).
func NewNames(app, sha string) (Names, error) {
	slug := Slug(app)
	if slug == "" {
		return Names{}, &UsageError{Input: "app name", Value: app, Rule: "needs at least one letter or digit (it is slugged to lowercase [a-z0-9-])"}
	}
	if len(slug) == 2 {
		return Names{}, &UsageError{Input: "app name", Value: app, Rule: "has 2 characters: its alias hosts \"<app>--<ref>\" would be reserved DNS labels (\"--\" in characters 3 and 4, which certificate authorities refuse, and \"xn--\" is any internationalized name): choose a longer one with --app", Err: ErrAppLikePreview}
	}
	if looksLikePreview(slug) {
		return Names{}, &UsageError{Input: "app name", Value: app, Rule: "ends in \"-\" and 8 hexadecimal characters, the form of another app's preview host (<app>-<sha>): its production host could be that preview's; choose another with --app", Err: ErrAppLikePreview}
	}
	n := Names{App: slug, AppPart: appPart(slug)}
	n.ProductionRelease = n.AppPart + "-" + productionSuffix
	n.ProductionNamespace = n.ProductionRelease
	if err := validNames(app, n.ProductionRelease); err != nil {
		return Names{}, err
	}
	if sha == "" {
		return n, nil
	}
	return n.WithSHA(sha)
}

// validNames checks a release name against every object the chart and
// shipper name after it, with Kubernetes' and Helm's own validators, so a
// name that the apiserver would refuse half-way (a Service "2048-7c77eb36"
// after the namespace was made) is refused before anything changes. The
// release also names its namespace (DNS-1123 label), Deployment, Ingress,
// HPA and PDB (DNS-1123 subdomains), Service (DNS-1035 label: starts with a
// letter), Lease ("shipper-" prefix) and Helm's record Secrets.
func validNames(app, release string) error {
	var problems []string
	problems = append(problems, validation.IsDNS1035Label(release)...)
	problems = append(problems, validation.IsDNS1123Label(release)...)
	problems = append(problems, validation.IsDNS1123Subdomain("shipper-"+release)...)
	problems = append(problems, validation.IsDNS1123Subdomain("sh.helm.release.v1."+release+".v999999")...)
	if err := chartutil.ValidateReleaseName(release); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return &UsageError{Input: "app name", Value: app, Rule: fmt.Sprintf("gives the name %q, which Kubernetes refuses (%s): choose another with --app (it must start with a letter)", release, problems[0])}
	}
	return nil
}

// WithSHA returns the names of commit sha of n's app.
func (n Names) WithSHA(sha string) (Names, error) {
	s, err := ValidateSHA(sha)
	if err != nil {
		return Names{}, err
	}
	n.SHA = s
	n.Short = ShortSHA(s)
	n.Release = n.AppPart + "-" + n.Short
	n.Namespace = n.Release
	if err := validNames(n.App, n.Release); err != nil {
		return Names{}, err
	}
	return n, nil
}

// ErrRefLikeSHA marks a ref WithRef refuses because it looks like a SHA.
var ErrRefLikeSHA = errors.New("ref looks like a commit SHA")

// ErrAppLikePreview marks an app name NewNames refuses because its hosts
// could be another app's: its slug ends as a preview host does, or it has
// 2 characters (its alias hosts would be reserved labels, "xn--" any IDN).
var ErrAppLikePreview = errors.New("app name looks like a preview host")

// looksLikePreview reports whether slug's last "-"-separated part is
// shortSHALen hexadecimal characters: "<app>" would then be the preview
// host label "<other app>-<sha>" of another app.
func looksLikePreview(slug string) bool {
	i := strings.LastIndexByte(slug, '-')
	return i > 0 && isShortSHA(slug[i+1:])
}

// isShortSHA reports whether s is a short SHA as hosts and names hold it:
// shortSHALen lowercase hexadecimal characters.
func isShortSHA(s string) bool {
	return len(s) == shortSHALen && strings.Trim(s, "0123456789abcdef") == ""
}

// maxRefSlug is the longest ref slug: a label value, as GitLab's
// CI_COMMIT_REF_SLUG.
const maxRefSlug = validation.LabelValueMaxLength

// RefSlug is a branch or tag name as GitLab's CI_COMMIT_REF_SLUG makes it
// (lowercased, everything but a-z and 0-9 replaced with "-", shortened to
// 63 bytes, no leading or trailing "-"), then Slug's runs of "-" made one:
// a branch list (`git ls-remote --heads`) and the CI_COMMIT_REF_SLUG a
// commit was deployed with give the same slug, long names included.
func RefSlug(ref string) string {
	b := []byte(strings.ToLower(ref))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return Slug(string(b[:min(len(b), maxRefSlug)]))
}

// WithRef returns n with the names of ref's alias: the stable host
// "<app>--<ref>" that follows the branch's newest commit. ref is slugged
// with RefSlug (GitLab's CI_COMMIT_REF_SLUG already is). A slug of 7 to
// 40 hex characters is refused (ErrRefLikeSHA): its host could be a
// commit's preview host.
func (n Names) WithRef(ref string) (Names, error) {
	slug := RefSlug(ref)
	if slug == "" {
		return Names{}, &UsageError{Input: "--ref", Value: ref, Rule: "needs at least one letter or digit (it is slugged as GitLab's CI_COMMIT_REF_SLUG)"}
	}
	if _, err := ValidateSHA(slug); err == nil {
		return Names{}, &UsageError{Input: "--ref", Value: ref, Rule: "looks like a commit SHA, so its alias host could be a commit's preview host: deploy with --ref '' (no alias) or rename the branch", Err: ErrRefLikeSHA}
	}
	n.Ref = slug
	n.RefPart = fitRef(slug, validation.DNS1123LabelMaxLength-len(n.AppPart)-len(aliasSeparator))
	n.AliasRelease = n.AppPart + "-ref-" + fit(slug, maxReleaseName-len(n.AppPart)-len("-ref-"))
	if err := validNames(n.App, n.AliasRelease); err != nil {
		return Names{}, err
	}
	return n, nil
}

// asAlias is n seen by the routing code (routes.go, router.go, records):
// the alias release in production's place, role RoleAlias. An alias is
// production's mechanism for another host.
func (n Names) asAlias() Names {
	n.ProductionRelease, n.routeRole = n.AliasRelease, RoleAlias
	return n
}

// role is the role of the routing release n.ProductionRelease names.
func (n Names) role() string { return cmp.Or(n.routeRole, RoleProduction) }

// fit shortens s to at most max characters, keeping it apart from other
// long strings with the same prefix by a hash of the whole.
func fit(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])
	if max <= hashLen+1 {
		return h[:max]
	}
	return strings.TrimRight(s[:max-hashLen-1], "-") + "-" + h[:hashLen]
}

// aliasSeparator parts app and ref in an alias host, "<app>--<ref>": no
// slug holds "--" (Slug makes every run of "-" one), so the first "--" of
// a host label says where the app ends, and no alias host is ever an app's
// production host ("<app>") or preview host ("<app>-<sha>").
const aliasSeparator = "--"

// fitRef is fit for the {ref} of an alias host: a shortened ref ends in
// "--" and a hash of the whole, a form no ref slug has, so a long ref
// shortened never gives the host of a short one.
func fitRef(s string, max int) string {
	if len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:refHashLen]
	if max <= refHashLen+len(aliasSeparator) {
		return h[:max]
	}
	return strings.TrimRight(s[:max-refHashLen-len(aliasSeparator)], "-") + aliasSeparator + h
}

// refHashLen is the length of the hash that ends a shortened alias ref.
const refHashLen = 10

// check refuses Names that NewNames did not make, or that name no commit
// when commit is true: an operation's first step.
func (n Names) check(commit bool) error {
	if n.AppPart == "" {
		return &UsageError{Input: "app name", Value: "", Rule: "is empty: name the app"}
	}
	if commit && n.SHA == "" {
		return &UsageError{Input: "commit SHA", Value: "", Rule: "is empty: name the commit"}
	}
	return nil
}

// Image is the reference `shipper package` pushes commit n to in
// repository: tagged with the short SHA.
func (n Names) Image(repository string) string { return repository + ":" + n.Short }

// ValidateSHA lowercases sha and checks it is 7 to 40 hex characters.
func ValidateSHA(sha string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(sha))
	if len(s) < 7 || len(s) > 40 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", &UsageError{Input: "commit SHA", Value: sha, Rule: "must be 7 to 40 hexadecimal characters"}
	}
	return s, nil
}

// CommitSHA picks the SHA that names a commit from the pair GitLab gives
// (CI_COMMIT_SHORT_SHA, CI_COMMIT_SHA): the full one when it extends the
// short one or the short one is empty, so images and releases record the
// whole SHA; otherwise the short one, which then names another commit than
// the pipeline's (a promote or rollback job choosing an older commit). The
// result is validated; empty input is a usage error naming --sha.
func CommitSHA(short, full string) (string, error) {
	short, full = strings.ToLower(strings.TrimSpace(short)), strings.ToLower(strings.TrimSpace(full))
	sha := short
	if full != "" && (short == "" || strings.HasPrefix(full, short)) {
		sha = full
	}
	if sha == "" {
		return "", &UsageError{Input: "commit SHA", Value: "", Rule: "is empty: name the commit with --sha (GitLab sets CI_COMMIT_SHORT_SHA)"}
	}
	return ValidateSHA(sha)
}

// CheckNewCommitSHA refuses a validated SHA too short to name a commit
// that is not deployed yet: a commit's release, namespace, hosts and image
// tag take the first 8 characters of its SHA (GitLab's
// CI_COMMIT_SHORT_SHA), which 7 characters lack. Deploy takes 7 only for
// a commit already deployed, whose namespace records the rest; what has
// no cluster to look it up in (render) or makes something new of the
// commit (package) needs 8.
func CheckNewCommitSHA(sha string) error {
	if len(sha) < shortSHALen {
		return &UsageError{Input: "commit SHA", Value: sha, Rule: fmt.Sprintf(
			"needs at least %d characters without a cluster to find the deployed commit it names, as deploy needs them for a new commit (GitLab's CI_COMMIT_SHORT_SHA has %d; CI_COMMIT_SHA all 40)", shortSHALen, shortSHALen)}
	}
	return nil
}

// ShortSHA is the part of a validated SHA that names its release, its
// namespace, its hosts and its image tag: the first 8 characters, as
// GitLab's CI_COMMIT_SHORT_SHA (all of it when shorter).
func ShortSHA(sha string) string { return sha[:min(shortSHALen, len(sha))] }

// Slug turns s into a DNS-1123 label: lowercase, runs of anything but
// [a-z0-9] become one "-", no leading or trailing "-". It does not bound the
// length: Names truncates where a name needs it.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// appPart shortens a slug longer than maxAppPart to a prefix plus a hash of
// the whole slug, so two long app names that share a prefix stay apart.
func appPart(slug string) string {
	if len(slug) <= maxAppPart {
		return slug
	}
	sum := sha256.Sum256([]byte(slug))
	prefix := strings.TrimRight(slug[:maxAppPart-1-hashLen], "-")
	return prefix + "-" + hex.EncodeToString(sum[:])[:hashLen]
}

// Hosts computes preview and production hosts.
type Hosts struct {
	// Domain is the base domain: previews are <app>-<sha>.<domain>,
	// production <app>.<domain>.
	Domain string
	// PreviewTemplate, ProductionTemplate and AliasTemplate, when set,
	// replace those defaults; they may use {app}, {sha}, {ref} and
	// {domain}. A branch alias is <app>--<ref>.<domain> by default. The
	// defaults are unambiguous (FuzzHostsUnambiguous): no two of an app's
	// production, a commit's preview and a ref's alias, of any apps, share
	// a host; a template may break that, which is why the cluster's
	// settings decide which hosts a project may use (hosts.go).
	PreviewTemplate, ProductionTemplate, AliasTemplate string
	// Scheme of the URLs shipper prints: "https" unless set ("http" for a
	// local ingress without TLS).
	Scheme string
}

// Preview returns the preview host of n, which must name a commit.
func (h Hosts) Preview(n Names) (string, error) {
	return h.host("preview", h.PreviewTemplate, "{app}-{sha}.{domain}", n)
}

// Production returns the production host of n's app.
func (h Hosts) Production(n Names) (string, error) {
	return h.host("production", h.ProductionTemplate, "{app}.{domain}", n)
}

// Alias returns the host of n's branch alias (n from WithRef).
func (h Hosts) Alias(n Names) (string, error) {
	return h.host("alias", h.AliasTemplate, "{app}"+aliasSeparator+"{ref}.{domain}", n)
}

func (h Hosts) host(kind, tmpl, def string, n Names) (string, error) {
	if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
		return "", &UsageError{Input: "URL scheme", Value: "(not shown)", Rule: "--url-scheme must be http or https"}
	}
	explicit := tmpl != ""
	if !explicit {
		tmpl = def
		if errs := validation.IsDNS1123Subdomain(h.Domain); len(errs) > 0 {
			return "", &UsageError{Input: "domain", Value: h.Domain, Rule: strings.Join(errs, "; ")}
		}
	}
	host := strings.NewReplacer("{app}", n.AppPart, "{sha}", n.Short, "{ref}", n.RefPart, "{domain}", h.Domain).Replace(tmpl)
	if errs := validation.IsDNS1123Subdomain(host); len(errs) > 0 {
		return "", &UsageError{Input: kind + " host", Value: host, Rule: strings.Join(errs, "; ")}
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) > validation.DNS1123LabelMaxLength {
			return "", &UsageError{Input: kind + " host", Value: host, Rule: "each dot-separated label must be at most 63 characters"}
		}
	}
	return host, nil
}

// url is the address of host, https unless Hosts.Scheme says otherwise.
func (h Hosts) url(host string) string {
	return cmp.Or(h.Scheme, "https") + "://" + host
}

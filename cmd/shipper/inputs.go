package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/release"
)

// Readers of the flags: what the commands build their operations from.

// appNames are the names of --app.
func appNames(c *cli.Context) (release.Names, error) {
	a := c.String("app")
	if a == "" {
		return release.Names{}, usageErrorf("--app is empty: name the app (or set SHIPPER_APP; GitLab sets CI_PROJECT_PATH_SLUG)")
	}
	return release.NewNames(a, "")
}

// commitNames are the names of --app's commit --sha (or --full-sha).
func commitNames(c *cli.Context) (release.Names, error) {
	n, err := appNames(c)
	if err != nil {
		return n, err
	}
	sha, err := release.CommitSHA(c.String("sha"), c.String("full-sha"))
	if err != nil {
		return n, err
	}
	return n.WithSHA(sha)
}

// imageRef is the commit's image: --image, else --repository's; a bare
// repository is tagged with short, the short SHA (the tag `shipper
// package` pushes). The reference is returned as given and parsed, so a
// name no registry takes is refused before any request.
func imageRef(c *cli.Context, short string) (string, release.Image, error) {
	ref := c.String("image")
	if ref == "" {
		ref = c.String("repository")
		if ref == "" {
			return "", release.Image{}, usageErrorf("--image is empty: give the image reference, or its repository with --repository (GitLab sets CI_REGISTRY_IMAGE)")
		}
		if !bareRepository(ref) {
			return "", release.Image{}, &release.UsageError{Input: "--repository", Value: ref, Rule: "must be a repository, without a tag or digest: give a whole reference with --image"}
		}
	}
	if bareRepository(ref) {
		if len(short) < 8 {
			// A 7-character SHA names a commit already deployed, whose
			// image package tagged with 8 characters: the tag is not
			// known here.
			return "", release.Image{}, &release.UsageError{Input: "commit SHA", Value: short, Rule: fmt.Sprintf(
				"cannot tag the image %s: `shipper package` tags with the first 8 characters; give them, or the whole reference with --image", ref)}
		}
		ref += ":" + short
	}
	img, err := release.ParseImage(ref)
	return ref, img, err
}

// bareRepository reports whether ref has neither a tag nor a digest (a
// ":" after the last "/" starts a tag; one before it is a port).
func bareRepository(ref string) bool {
	return !strings.Contains(ref, "@") && strings.LastIndex(ref, ":") <= strings.LastIndex(ref, "/")
}

// registryOptions reach the registry with --registry-user, else with the
// given fallback credentials (deploy's pull user), else the Docker config.
func registryOptions(c *cli.Context, fallbackUser, fallbackPassword string) image.Options {
	o := image.Options{Insecure: c.Bool("insecure-registry"), Log: logger(c)}
	o.Username, o.Password = c.String("registry-user"), c.String("registry-password")
	if o.Username == "" {
		o.Username, o.Password = fallbackUser, fallbackPassword
	}
	return o
}

// chartValues merges --values files, --set and --ingress-class.
func chartValues(c *cli.Context) (map[string]any, error) {
	sets := c.StringSlice("set")
	if ic := c.String("ingress-class"); ic != "" {
		sets = append([]string{"ingress.className=" + ic}, sets...)
	}
	return release.ParseValues(commaList(c.StringSlice("values")), sets)
}

// commaList splits each item on commas, as urfave/cli would have done for
// a flag whose items never hold one (files, platforms): SHIPPER_VALUES can
// name several files.
func commaList(items []string) []string {
	var out []string
	for _, it := range items {
		for _, s := range strings.Split(it, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// hostVars are the variables --host reads: the preview host's (deploy),
// the production host's (promote, rollback); render, whose one --host
// serves both modes, reads the one of its mode.
var hostVars = map[bool]string{false: "SHIPPER_PREVIEW_HOST", true: "SHIPPER_PRODUCTION_HOST"}

// hosts builds the host rules; --host is an explicit host or a template.
func hosts(c *cli.Context, production bool) release.Hosts {
	h := release.Hosts{Domain: c.String("domain"), Scheme: c.String("url-scheme")}
	tmpl := c.String("host")
	if tmpl == "" {
		tmpl = os.Getenv(hostVars[production])
	}
	if production {
		h.ProductionTemplate = tmpl
	} else {
		// A preview's gate answers production's host without a login
		// (--protect previews): it needs to know it.
		h.PreviewTemplate, h.ProductionTemplate = tmpl, os.Getenv(hostVars[true])
	}
	return h
}

// verify is the release.Verify the flags ask for, nil without --verify.
func verify(c *cli.Context) *release.Verify {
	if !c.Bool("verify") {
		return nil
	}
	return &release.Verify{Address: c.String("verify-address")}
}

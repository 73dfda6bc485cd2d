package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/image"
	"github.com/shipper-dev/shipper/internal/release"
)

func packageCommand() *cli.Command {
	return &cli.Command{
		Name:  "package",
		Usage: "build the commit's app into an OCI image and push it, without a Docker daemon",
		UsageText: `shipper package [--context DIR] --repository REPO --sha SHA [options]

Example (GitLab CI sets every default from its variables):
   shipper package --context . --repository registry.example.com/group/app \
     --sha 7c77eb36 --entrypoint /app/server --port 8080
   # stdout: registry.example.com/group/app:7c77eb36@sha256:...

Without --entrypoint and --cmd, a Node.js, PHP, Python or Ruby app's command
and base are detected from its files (package.json; composer.json, index.php;
requirements.txt, pyproject.toml, app.py; Gemfile, config.ru, app.rb):
   shipper package --context . --repository registry.example.com/group/app --sha 7c77eb36
   # stderr: detected app kind=node cmd=["node","server.js"] base=node:22-alpine ...`,
		Flags: flags([]cli.Flag{
			&cli.StringFlag{Name: "context", Value: ".", Usage: "app directory (the build context)", EnvVars: []string{"SHIPPER_CONTEXT"}},
		}, imageFlags(), commitFlags(), []cli.Flag{
			commitTimeFlag(),
			&cli.StringFlag{Name: "source", Usage: "project URL for the source annotation", EnvVars: []string{"SHIPPER_SOURCE", "CI_PROJECT_URL"}},
			&cli.StringFlag{Name: "base", Value: image.Scratch, Usage: "base image reference, or scratch; a detected app's default is its kind's official image, like node:22-alpine", EnvVars: []string{"SHIPPER_BASE"}},
			&cli.StringFlag{Name: "workdir", Value: "/app", Usage: "where the app lands in the image", EnvVars: []string{"SHIPPER_WORKDIR"}},
			&cli.StringFlag{Name: "entrypoint", Usage: `entrypoint: words, or a JSON array like '["/app/server","--flag"]'; without it and --cmd, the command is detected from the app's files`, EnvVars: []string{"SHIPPER_ENTRYPOINT"}},
			&cli.StringFlag{Name: "cmd", Usage: "default arguments, as --entrypoint", EnvVars: []string{"SHIPPER_CMD"}},
			&cli.StringFlag{Name: "user", Usage: "user the container runs as (uid[:gid])", EnvVars: []string{"SHIPPER_USER"}},
			envFlag(),
			&cli.IntFlag{Name: "port", Usage: "port the app listens on", EnvVars: []string{"SHIPPER_PORT"}},
			&cli.StringSliceFlag{Name: "platform", Usage: "os/arch to build for or narrow a multi-platform base to (repeatable)", EnvVars: []string{"SHIPPER_PLATFORM"}},
			&cli.StringSliceFlag{Name: "platform-context", Usage: "os/arch=DIR: that platform's app comes from DIR instead of --context (a binary per architecture; repeatable)"},
			&cli.StringSliceFlag{Name: "tag", Usage: "extra tag (repeatable)"},
			&cli.StringFlag{Name: "compression", Value: image.Gzip, Usage: "app layer compression: gzip, or zstd (OCI tar+zstd: containerd 1.5+ pulls it)", EnvVars: []string{"SHIPPER_COMPRESSION"}},
			&cli.IntFlag{Name: "compression-level", Usage: "gzip 1 (fastest, default) to 9; zstd 1 (fastest, default) to 4", EnvVars: []string{"SHIPPER_COMPRESSION_LEVEL"}},
			&cli.IntFlag{Name: "uid", Usage: "owner uid of the app's files"},
			&cli.IntFlag{Name: "gid", Usage: "owner gid of the app's files"},
		}, registryFlags(), []cli.Flag{
			&cli.StringFlag{Name: "digest-file", Usage: "also write the pushed reference to this file"},
			verboseFlag(),
		}),
		OnUsageError: onUsageError,
		Action:       runPackage,
	}
}

func runPackage(c *cli.Context) error {
	sha, err := release.CommitSHA(c.String("sha"), c.String("full-sha"))
	if err != nil {
		return err
	}
	// A new image of the commit: its tag is the 8 characters deploy looks
	// for.
	if err := release.CheckNewCommitSHA(sha); err != nil {
		return err
	}
	short := release.ShortSHA(sha)
	target, err := pushTarget(c, short)
	if err != nil {
		return err
	}
	created, err := image.SourceDate(os.Getenv("SOURCE_DATE_EPOCH"), c.String("commit-time"))
	if err != nil {
		return err
	}
	entrypoint, err := words("--entrypoint", c.String("entrypoint"))
	if err != nil {
		return err
	}
	cmd, err := words("--cmd", c.String("cmd"))
	if err != nil {
		return err
	}
	platformContexts := map[string]string{}
	for _, pc := range c.StringSlice("platform-context") {
		p, dir, ok := strings.Cut(pc, "=")
		if !ok || p == "" || dir == "" {
			return usageErrorf("--platform-context %q: must be os/arch=DIR, like linux/arm64=build/arm64", pc)
		}
		platformContexts[p] = dir
	}
	spec := image.Spec{
		Context: c.String("context"), Workdir: c.String("workdir"), Base: c.String("base"),
		Platforms: commaList(c.StringSlice("platform")), PlatformContexts: platformContexts, Entrypoint: entrypoint, Cmd: cmd, User: c.String("user"),
		Port: c.Int("port"), Env: c.StringSlice("env"), UID: c.Int("uid"), GID: c.Int("gid"),
		SHA: sha, ShortSHA: short, Source: c.String("source"), Created: created,
		Compression: image.Compression{Algorithm: c.String("compression"), Level: c.Int("compression-level")},
	}
	if len(entrypoint) == 0 && len(cmd) == 0 {
		if err := detectApp(c, &spec); err != nil {
			return err
		}
	}
	opts := registryOptions(c, "", "")
	art, err := image.Build(c.Context, spec, opts)
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	defer art.Close()
	ref, err := image.Push(c.Context, art, target.Repository, target.Tag, c.StringSlice("tag"), opts)
	if err != nil {
		return fmt.Errorf("pushing: %w", err)
	}
	if f := c.String("digest-file"); f != "" {
		if err := os.WriteFile(f, []byte(ref+"\n"), 0o644); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(c.App.Writer, ref)
	return err
}

// pushTarget is where package pushes: the commit's image (imageRef), which
// must be a tag, and --tag's tags beside it, all checked before the base
// image is pulled.
func pushTarget(c *cli.Context, short string) (release.Image, error) {
	ref, img, err := imageRef(c, short)
	if err != nil {
		return img, err
	}
	if img.Digest != "" {
		return img, &release.UsageError{Input: "--image", Value: ref, Rule: "package pushes a tag, and prints the digest it pushed: give REPOSITORY:TAG"}
	}
	for _, t := range c.StringSlice("tag") {
		if _, err := release.ParseImage(img.Repository + ":" + t); err != nil || t == "" {
			return img, &release.UsageError{Input: "--tag", Value: t, Rule: "must be 1 to 128 letters, digits, '_', '-' and '.'"}
		}
	}
	return img, nil
}

// detectApp fills in what --entrypoint and --cmd left open from the app's
// files (image.Detect): command, port, PORT, ignore defaults, and the
// kind's official image unless --base names one. An app nothing
// recognizes is bad input, unless --base names an image whose own command
// runs it (a static site on nginx).
func detectApp(c *cli.Context, s *image.Spec) error {
	baseGiven := c.IsSet("base") && c.String("base") != ""
	d, err := image.Detect(s.Context, s.Port)
	switch {
	case errors.Is(err, image.ErrUnknownApp) && baseGiven:
		logger(c).Info("no app kind detected: the image runs the base's own command", "base", s.Base, "why", err)
		return nil
	case errors.Is(err, image.ErrUndetected):
		return fmt.Errorf("%w; set --entrypoint or --cmd (SHIPPER_ENTRYPOINT, SHIPPER_CMD)", err)
	case err != nil:
		return err
	}
	s.Cmd, s.Port, s.Ignore = d.Cmd, d.Port, d.Ignore
	s.Env = append(d.Env, s.Env...) // --env overrides the defaults
	if !c.IsSet("workdir") {
		s.Workdir = d.Workdir
	}
	if !baseGiven {
		s.Base = d.Base
	}
	cmd, _ := json.Marshal(d.Cmd)
	logger(c).Info("detected app", "kind", d.Kind, "cmd", string(cmd), "base", s.Base, "why", d.Why)
	return nil
}

// words splits a flag value into arguments: a JSON array, or words.
func words(flag, v string) ([]string, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, usageErrorf("%s %q: not a JSON array of strings: %v", flag, v, err)
		}
		return out, nil
	}
	return strings.Fields(v), nil
}

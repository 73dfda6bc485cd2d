package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shipper-dev/shipper/internal/database"
	"github.com/shipper-dev/shipper/internal/release"
)

// Flag constructors: each flag is defined once here and shared by the
// commands that take it (as containerd's ctr shares flag sets), so a flag
// name has one usage, default and set of variables everywhere
// (TestSameFlagSameDefinition), and one check (checks.go). A command takes
// every flag it can use (TestSiblingsTakeTheSameFlags): one job script or
// one set of variables serves all its siblings. Every flag reads
// SHIPPER_<NAME> first, then the GitLab variable that fits.
//
// Each call makes new flags: urfave/cli keeps a parsed value in the flag.

// globalFlags reach the cluster and shape the output. The app has them, and
// so does every command that works on the cluster, so they are accepted
// before or after the command name (see hoistGlobalFlags). render takes
// them too, so that a deploy's command line renders; it reads no cluster
// flag.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file", EnvVars: []string{"SHIPPER_KUBECONFIG", "KUBECONFIG"}},
		&cli.StringFlag{Name: "kube-context", Usage: "kubeconfig context", EnvVars: []string{"SHIPPER_KUBE_CONTEXT", "KUBE_CONTEXT"}},
		&cli.StringFlag{Name: "kube-url", Usage: "API server URL (instead of a kubeconfig)", EnvVars: []string{"SHIPPER_KUBE_URL", "KUBE_URL"}},
		&cli.StringFlag{Name: "kube-token", Usage: "bearer token (never printed)", EnvVars: []string{"SHIPPER_KUBE_TOKEN", "KUBE_TOKEN"}},
		&cli.StringFlag{Name: "kube-ca-file", Usage: "PEM file of the API server's CA", EnvVars: []string{"SHIPPER_KUBE_CA_FILE", "KUBE_CA_PEM_FILE"}},
		&cli.StringFlag{Name: "kube-ca", Usage: "PEM text of the API server's CA, or the path of a file holding it (a GitLab File variable)", EnvVars: []string{"SHIPPER_KUBE_CA", "KUBE_CA_PEM"}},
		&cli.BoolFlag{Name: "insecure-skip-tls-verify", Usage: "do not verify the API server's certificate (never do this in production)", EnvVars: []string{"SHIPPER_INSECURE_SKIP_TLS_VERIFY"}},
		appFlag(),
		&cli.StringFlag{Name: "project-id", Usage: "GitLab project that owns the app: recorded on what shipper creates, and no other project's app is touched", EnvVars: []string{"SHIPPER_PROJECT_ID", "CI_PROJECT_ID"}},
		&cli.StringFlag{Name: "project-path", Usage: "that project's path, named in messages", EnvVars: []string{"SHIPPER_PROJECT_PATH", "CI_PROJECT_PATH"}},
		&cli.StringFlag{Name: "router", Value: "ingress", Usage: "how hosts reach commits: ingress (an Ingress per host) or gateway (Gateway API HTTPRoutes on --gateway)", EnvVars: []string{"SHIPPER_ROUTER"}},
		&cli.StringFlag{Name: "gateway", Usage: "NAMESPACE/NAME of the Gateway the gateway router attaches routes to", EnvVars: []string{"SHIPPER_GATEWAY"}},
		&cli.StringFlag{Name: "gateway-section", Usage: "listener of that Gateway (default: all of them)", EnvVars: []string{"SHIPPER_GATEWAY_SECTION"}},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this long (more than 0)", EnvVars: []string{"SHIPPER_TIMEOUT"}},
		outputFlag(),
		verboseFlag(),
		// Hidden: the stress tests shorten it so that a killed run's locks
		// are taken over in seconds; users have no reason to change it.
		&cli.DurationFlag{Name: "lock-lease", Value: 15 * time.Second, Hidden: true, EnvVars: []string{"SHIPPER_LOCK_LEASE"}},
	}
}

func appFlag() cli.Flag {
	return &cli.StringFlag{Name: "app", Usage: "app name, slugged into release names and hosts", EnvVars: []string{"SHIPPER_APP", "CI_PROJECT_PATH_SLUG", "CI_PROJECT_NAME"}}
}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json", EnvVars: []string{"SHIPPER_OUTPUT"}}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log debug events too, in milliseconds: each Kubernetes API request (method, path, status, time) and their count at the end", EnvVars: []string{"SHIPPER_VERBOSE"}}
}

// commitFlags name the commit: GitLab's short SHA, and the full one that
// images and releases record when it extends the short one
// (release.CommitSHA).
func commitFlags() []cli.Flag { return []cli.Flag{shaFlag(), fullSHAFlag()} }

func shaFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "sha", Usage: "commit SHA, 8 to 40 hex characters (7 name a commit already deployed, which deploy, promote, delete and status look up)", EnvVars: []string{"SHIPPER_SHA", "CI_COMMIT_SHORT_SHA"}}
}

func fullSHAFlag() cli.Flag {
	return &cli.StringFlag{Name: "full-sha", Usage: "full commit SHA, recorded when it extends --sha", EnvVars: []string{"SHIPPER_FULL_SHA", "CI_COMMIT_SHA"}}
}

// imageFlags name the commit's image: package pushes it, deploy and render
// run it. A bare repository is tagged with the short SHA, which is what
// `package --image REPO` has always pushed (imageRef).
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image", Usage: "the commit's image: REPOSITORY:TAG, or REPOSITORY@sha256:DIGEST for deploy and render; a bare REPOSITORY is tagged with the short SHA (default: --repository's)", EnvVars: []string{"SHIPPER_IMAGE_REF"}},
		&cli.StringFlag{Name: "repository", Usage: "repository of the commit's image, tagged with the short SHA: package pushes it there, deploy and render take it from there", EnvVars: []string{"SHIPPER_IMAGE", "CI_REGISTRY_IMAGE"}},
	}
}

// registryFlags reach the registry: package pushes, deploy resolves.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registry-user", Usage: "registry user", EnvVars: []string{"SHIPPER_REGISTRY_USER", "CI_REGISTRY_USER"}},
		&cli.StringFlag{Name: "registry-password", Usage: "registry password (never printed)", EnvVars: []string{"SHIPPER_REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD"}},
		&cli.BoolFlag{Name: "insecure-registry", Usage: "allow plain HTTP to a registry not on loopback", EnvVars: []string{"SHIPPER_INSECURE_REGISTRY"}},
	}
}

func commitTimeFlag() cli.Flag {
	return &cli.StringFlag{Name: "commit-time", Usage: "commit time (RFC 3339): deploy moves an alias only to a commit at least as new as the one it serves (default: order of first deploys); package stamps the files and the image with it unless SOURCE_DATE_EPOCH is set", EnvVars: []string{"SHIPPER_COMMIT_TIME", "CI_COMMIT_TIMESTAMP"}}
}

func envFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "env", Usage: "plain (non-secret) environment variable NAME=VALUE of the app (repeatable): package puts it in the image, deploy and render in the chart's env; secrets come from --secret-prefix variables"}
}

// hostFlags are the hosts' shape: deploy, promote and render build hosts
// with them, and rollback checks the host it returns to against them.
func hostFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "domain", Usage: "base domain of the preview and production hosts (rollback: checked against the host it returns to)", EnvVars: []string{"SHIPPER_DOMAIN", "KUBE_INGRESS_BASE_DOMAIN"}},
		&cli.StringFlag{Name: "url-scheme", Value: "https", Usage: "scheme of the printed URLs (http for a local ingress without TLS)", EnvVars: []string{"SHIPPER_URL_SCHEME"}},
	}
}

// --host is the one flag whose variable depends on the command: the host
// the command routes (hostVars, sameFlagExceptions in the tests).

func previewHostFlag() cli.Flag {
	return &cli.StringFlag{Name: "host", Usage: "preview host, or a template with {app}, {sha}, {domain}", EnvVars: []string{hostVars[false]}}
}

func productionHostFlag() cli.Flag {
	return &cli.StringFlag{Name: "host", Usage: "production host, or a template with {app}, {domain}", EnvVars: []string{hostVars[true]}}
}

func renderHostFlag() cli.Flag {
	return &cli.StringFlag{Name: "host", Usage: "the host, or a template with {app}, {sha}, {domain} (default: $SHIPPER_PREVIEW_HOST, or $SHIPPER_PRODUCTION_HOST with --production)"}
}

// chartFlags choose the chart and its values; deploy, promote and render
// share them.
func chartFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "values", Aliases: []string{"f"}, Usage: "chart values file (repeatable)", EnvVars: []string{"SHIPPER_VALUES"}},
		&cli.StringSliceFlag{Name: "set", Usage: "chart value KEY=VALUE, as helm --set (repeatable)"},
		&cli.StringFlag{Name: "chart", Usage: "chart directory, .tgz or oci:// reference (default: the embedded chart)", EnvVars: []string{"SHIPPER_CHART"}},
		&cli.StringFlag{Name: "ingress-class", Usage: "IngressClass of the preview and production Ingresses", EnvVars: []string{"SHIPPER_INGRESS_CLASS"}},
	}
}

func secretPrefixFlag() cli.Flag {
	return &cli.StringFlag{Name: "secret-prefix", Value: "K8S_SECRET_", Usage: "variables NAME with this prefix are the app's secret environment, a Secret the pods read (never chart values or output): deploy's the commit's, promote's and rollback's the production environment's while the commit serves production; render renders only the envFrom", EnvVars: []string{"SHIPPER_SECRET_PREFIX"}}
}

func pullUserFlag() cli.Flag {
	return &cli.StringFlag{Name: "pull-user", Usage: "registry user the cluster pulls with (a deploy token): deploy writes the namespace's pull secret, render renders its use", EnvVars: []string{"SHIPPER_PULL_USER", "CI_DEPLOY_USER"}}
}

func pullPasswordFlag() cli.Flag {
	return &cli.StringFlag{Name: "pull-password", Usage: "its password (never printed)", EnvVars: []string{"SHIPPER_PULL_PASSWORD", "CI_DEPLOY_PASSWORD"}}
}

func refFlag() cli.Flag {
	return &cli.StringFlag{Name: "ref", Usage: "branch (or tag) the commit is from: deploy moves its alias <app>--<ref>.<domain> to the commit once it is available, unless a newer commit of the branch has it; delete --with-alias deletes that alias; '' for none", EnvVars: []string{"SHIPPER_REF", "CI_COMMIT_REF_SLUG"}}
}

// waitFlag is --wait (SHIPPER_WAIT), on by default.
func waitFlag() cli.Flag {
	return &cli.BoolFlag{Name: "wait", Value: true, Usage: "wait until what changed serves: deploy, until the Deployment is available; deploy, promote and rollback on the gateway router, until the Gateway serves the route", EnvVars: []string{"SHIPPER_WAIT"}}
}

// verifyFlags are --verify and --verify-address, read by verify.
func verifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "verify", Usage: "gateway router: return only once the URL answers from the commit (its Shipper-Commit header)", EnvVars: []string{"SHIPPER_VERIFY"}},
		&cli.StringFlag{Name: "verify-address", Usage: "HOST:PORT to send --verify's requests to instead of the URL's host (the Gateway's address), as curl --connect-to", EnvVars: []string{"SHIPPER_VERIFY_ADDRESS"}},
	}
}

func dotenvFlag() cli.Flag {
	return &cli.StringFlag{Name: "dotenv", Usage: "write SHIPPER_URL=<url> here (deploy: the preview URL, and SHIPPER_ALIAS_URL; promote and rollback: the production URL) for GitLab's artifacts:reports:dotenv", EnvVars: []string{"SHIPPER_DOTENV"}}
}

func weightFlag() cli.Flag {
	return &cli.IntFlag{Name: "weight", Usage: "canary (gateway router): percent of production's requests for this commit, the live one keeping the rest; 100 or none promotes fully (render: only a full promote, the live commit is the cluster's)", EnvVars: []string{"SHIPPER_WEIGHT"}}
}

// drainDelayFlag is promote's and rollback's.
func drainDelayFlag() cli.Flag {
	return &cli.DurationFlag{Name: "drain-delay", Value: release.DefaultDrainDelay, Usage: "how long the outgoing commit keeps its production size after the switch before it returns to its preview size (0: at once)", EnvVars: []string{"SHIPPER_DRAIN_DELAY"}}
}

// databaseFlags give each commit a database of its own (docs/database.md):
// deploy makes it, delete and prune drop it, status reports leftovers,
// render renders the Secret the pods take. Without --database-url,
// nothing.
func databaseFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "database-url", Usage: "admin connection postgres://USER:PASSWORD@HOST:PORT/DB of the server each commit gets a database on (never printed; a masked, protected variable); none: no databases", EnvVars: []string{"SHIPPER_DATABASE_URL"}},
		&cli.StringFlag{Name: "database-template", Usage: "the database each commit's database is a copy of (CREATE DATABASE ... TEMPLATE)", EnvVars: []string{"SHIPPER_DATABASE_TEMPLATE"}},
		&cli.StringFlag{Name: "database-host", Usage: "HOST[:PORT] the pods reach the server at, when not --database-url's", EnvVars: []string{"SHIPPER_DATABASE_HOST"}},
		&cli.StringFlag{Name: "database-strategy", Value: database.StrategyAuto, Usage: "how the template is copied: auto (file_copy from a 64 MB template, wal_log below), wal_log or file_copy (PostgreSQL 15's CREATE DATABASE ... STRATEGY)", EnvVars: []string{"SHIPPER_DATABASE_STRATEGY"}},
	}
}

// migrateFlag is deploy's (the commit's database, a Helm hook Job before
// its pods roll out), render's, and promote's (production's database,
// before the switch): internal/release/migrate.go.
func migrateFlag() cli.Flag {
	return &cli.StringFlag{Name: "migrate", Usage: "command run with the commit's image and its database's environment before it serves: deploy against the commit's database, promote against production's (DATABASE_URL of the production secret variables); a shell command (the image needs /bin/sh) or a JSON array [\"/app/migrate\", \"up\"] run as it is; never printed", EnvVars: []string{"SHIPPER_MIGRATE"}}
}

// flags joins flag sets.
func flags(sets ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

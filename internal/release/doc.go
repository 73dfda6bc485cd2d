// Package release installs, promotes, rolls back and deletes shipper's Helm
// releases through the Helm SDK (helm.sh/helm/v3/pkg/action) and client-go.
// Everything it creates is ordinary Helm state.
//
// Design, in Helm's pkg/action style:
//
//	Configuration      clients, cached discovery and mapper, the chart (loaded
//	                   once), a slog logger; helm(ns) gives Helm's action
//	                   configuration for one namespace's release records.
//	                   NewConfiguration(nil) is offline: Render only;
//	                   WithRouting picks the router (router.go): ingress, or
//	                   gateway (HTTPRoutes on a Gateway, ReferenceGrants)
//	NewNames           app + SHA -> release, namespace, production names (DNS-
//	                   and Helm-safe, stable hash on truncation); CommitSHA and
//	                   ShortSHA are the one SHA rule; Hosts -> hosts
//	plan               names -> host -> URL -> values (user's, shipper's on top)
//	                   -> schema check -> offline render; previewPlan and
//	                   productionPlan, used by both Run and Render
//	begin              names valid -> cluster -> app owned by this project ->
//	                   SHA resolved to the commit's one release (every Run)
//	Deploy.Run         prepare: begin (the plan made meanwhile) -> plan ->
//	                   namespace (+ RoleBinding) -> isolation objects; in
//	                   a namespace it made, Helm's install starts then,
//	                   its writes held at a gate (installahead.go);
//	                   install: [live? production Lease] -> Lease -> pull
//	                   secret -> [the install ahead: gate opened if the
//	                   Lease is this deploy's, else shut, nothing sent] ->
//	                   open the release (repair pending) ->
//	                   [--migrate: a killed run's Job stopped] ->
//	                   install|upgrade (the live block carried, sizing.go;
//	                   the chart's migration hook first, migrate.go)
//	                   -> wait + diagnose (kube.Rollout) [-> undo];
//	                   [a ref] -> move the alias: available -> alias Lease
//	                   -> commit Lease -> newer than the commit the alias
//	                   serves? -> the switch on <app>-ref-<ref> (alias.go)
//	Promote.Run        validate -> prepare: begin -> [canary: live commit]
//	                   -> plan -> checks (cached) -> production namespace;
//	                   switch: production Lease -> commit Lease -> the
//	                   switch (switch.go: fresh checks -> [--migrate:
//	                   production's database, migrate.go] -> size up ->
//	                   uninterruptible: upgrade <app>-production (ingress:
//	                   Ingress in the commit's namespace, created before the
//	                   old is deleted; gateway: one HTTPRoute in its own
//	                   namespace, updated in place, weighted for a canary)
//	                   -> sweep stray routes / reconcile the HTTPRoute);
//	                   land: await the Gateway's conditions -> [verify the
//	                   URL answers] -> settle sizes after the drain delay
//	Deploy.Render,     the plan's manifest, offline (`helm template`)
//	Promote.Render
//	Rollback.Run       validate -> begin -> production Lease -> pick
//	                   revision (previous promotion that served, the live
//	                   commit alone during a canary, SHA, number) ->
//	                   target's Lease -> the switch (switch.go, with Helm's
//	                   rollback instead of an upgrade) -> land
//	Delete.Run         begin -> owned namespace? -> RoleBinding -> production
//	                   Lease -> [alias Leases] -> commit Lease -> not live,
//	                   no route, no alias (or WithAlias: uninstall it)? ->
//	                   Helm uninstall -> delete namespace
//	Prune.Run          begin -> plan (readApp: policies, then live, canary,
//	                   alias, held Lease protect) -> production Lease -> each
//	                   removal Delete's path, Parallel at a time (prune.go)
//	List.Run, Status   labels only: namespaces + release-record metadata;
//	                   Status.Check reports broken invariants (check.go)
//
// Every operation takes Names, made once by the caller, and the context
// carries the only deadline (the CLI's --timeout); Helm's own timeouts are
// set from it. Deploy.Timeout lets a library caller add one of its own.
//
// Names: a commit's release and namespace are "<app>-<short sha>";
// production's are "<app>-production". Helm stores the labels
// shipper.dev/app and shipper.dev/sha on every revision (and copies them on
// rollback), so what production serves is read from one record's labels,
// never by decoding releases. Each release's chart app version is the
// commit's short SHA, so `helm list -A` shows what runs.
//
// Bad input is a *UsageError (its BadInput method is the mark the CLI
// maps to exit code 2) returned before anything in the cluster changes; a
// failed rollout is a *RolloutError naming pod, reason and logs.
//
// Locks are Leases ("shipper-<release>", internal/lease's Locker, made by
// NewConfiguration), taken in one order: production's, then a branch
// alias's, then a commit's.
// Access (access.go): shipper binds ClusterRole shipper-namespace to itself
// in each namespace it makes, its only rights there (deploy/rbac).
// Isolation (isolation.go): each namespace it makes also gets a
// NetworkPolicy (its own pods and the router's namespaces only), a
// ResourceQuota and a LimitRange from the cluster's settings (settings.go),
// checked before anything changes.
//
// Files: one operation per file (deploy.go, promote.go, rollback.go,
// delete.go, list.go, status.go); production.go holds what production is
// and how it is read; plan.go what a release will be; install.go Helm's
// install/upgrade with pending repair, and the one undo of a commit's
// release; known.go what Helm's actions read, answered from the revisions
// shipper read under the lock; recordwrite.go Helm's records written in
// its Secrets driver's format, compressed faster; kubeclient.go Helm's
// kube client as shipper runs it (no reachability check, a release's
// Service, workloads and routes created at once); early.go a request sent before its answer
// is needed, rollback_reads.go a rollback's two rounds of them;
// isolated.go the one read that finds an existing namespace isolated; commit.go the checks on a commit;
// router.go the Gateway API router; routes.go production's routing
// objects; switch.go the one switch of a route (promote, canary step,
// rollback, alias move) and what follows it; alias.go branch aliases;
// sizing.go production size; migrate.go --migrate's Jobs (the chart's
// hook, promote's against production's database); database.go the
// per-commit databases; prune.go retention; verify.go --verify;
// check.go the invariants; lock.go the Locker and uninterruptible. Reaching the cluster (kube.Options),
// retrying what passes and waiting for a Deployment are internal/kube's;
// taking, renewing and giving up a Lease is internal/lease's.
package release

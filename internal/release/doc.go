// Package release installs, promotes, rolls back and deletes shipper's Helm
// releases through the Helm SDK (helm.sh/helm/v3/pkg/action) and client-go.
// Everything it creates is ordinary Helm state.
//
// Design, in Helm's pkg/action style:
//
//	Configuration      clients, cached discovery and mapper, the chart (loaded
//	                   once), a slog logger; helm(ns) gives Helm's action
//	                   configuration for one namespace's release records
//	NewNames           app + SHA -> release, namespace, production names (DNS-
//	                   and Helm-safe, stable hash on truncation); Hosts -> hosts
//	Deploy.Run         validate -> namespace -> Lease -> pull secret ->
//	                   repair pending -> install|upgrade -> wait + diagnose
//	Promote.Run        validate -> commit deployed? -> production namespace ->
//	                   Lease -> upgrade <app>-production (Ingress in the commit's
//	                   namespace; new route created before the old is deleted)
//	Rollback.Run       Lease -> pick revision (previous, SHA, number) -> target
//	                   commit still deployed? -> Helm rollback
//	Delete.Run         owned namespace? -> production Lease -> not live? ->
//	                   Helm uninstall -> delete namespace
//	List.Run, Status   labels only: namespaces + release-record metadata
//	Render             offline `helm template` of either mode
//
// Names: a commit's release and namespace are "<app>-<short sha>";
// production's are "<app>-production". Helm stores the labels
// shipper.dev/app and shipper.dev/sha on every revision (and copies them on
// rollback), so what production serves is read from one record's labels,
// never by decoding releases.
//
// Bad input is a *UsageError returned before anything in the cluster
// changes; a failed rollout is a *RolloutError naming pod, reason and logs.
package release

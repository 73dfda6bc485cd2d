// Package release installs, promotes, rolls back and deletes shipper's Helm
// releases through the Helm SDK (helm.sh/helm/v3/pkg/action) and client-go.
//
// Each commit of an app is its own release "<app>-<sha>" in its own
// namespace; production is a separate release "<app>-production" whose
// Ingress routes the production host to the promoted commit's Service.
// The operations arrive with the release engine issue.
package release

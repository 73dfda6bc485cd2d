//go:build tools

// Package tools pins the helm CLI the tests run to prove shipper's
// releases are ordinary Helm state. hack/tools.sh builds helm.sh/helm/v3/cmd/helm
// with this module's go.sum, at the same version as the SDK shipper uses.
package tools

import _ "helm.sh/helm/v3/cmd/helm"

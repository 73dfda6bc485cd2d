//go:build tools

// Package tools pins crane, the baseline of shipper's packaging benchmark
// (tar -czf, then crane append), at the go-containerregistry version
// shipper itself uses. hack/tools.sh builds it.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"

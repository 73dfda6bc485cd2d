//go:build tools

// Package tools pins the etcd server that shipper's test harness runs.
// Nothing imports it; hack/tools.sh builds go.etcd.io/etcd/server/v3 with
// this module's go.sum.
package tools

import _ "go.etcd.io/etcd/server/v3"

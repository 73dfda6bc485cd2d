// Package integration holds the suites that build shipper and shipper-gate
// and run them, as a GitLab job and a preview's pod do, against the real
// kube-apiserver, registry and PostgreSQL of internal/testenv: the
// lifecycle, access policies, stress, the job image and the benchmarks.
// It has no code of its own; package main's own code (flags, help, output,
// wiring) is tested beside it in cmd/shipper. See docs/development.md,
// "Where tests live".
package integration

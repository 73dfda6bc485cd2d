//go:build !linux

package hugeheap

// Reserved is false where the heap is not advised.
func Reserved() bool { return false }

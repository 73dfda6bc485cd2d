// Package kube is shipper's Kubernetes plumbing, the part of talking to a
// cluster that knows nothing of releases: how to reach the apiserver, and
// how to wait for a Deployment and say why it did not become available.
//
// Design:
//
//	Options.RESTConfig  kubeconfig, context, or URL + token + CA (GitLab's
//	                    KUBE_* variables) -> rest.Config; bad settings are a
//	                    *UsageError (exit code 2). Its transport retries
//	                    what passes (transient.go: refused connections,
//	                    lost reads, a 5xx on a read; TransientBackoff), and
//	                    innermost counts and logs each request sent
//	                    (trace.go: Requests, method + path + status only);
//	                    requests sent before the first connection wait
//	                    for it, so one TLS handshake serves them all
//	                    (firstconn.go)
//	Unreachable         an error that means "no cluster", not "operation failed"
//	Rollout.Wait        polls a Deployment until `kubectl rollout status`
//	                    says done; looks at the pods of Rollout.Selector each
//	                    round and fails early, with a *RolloutError naming
//	                    pod, reason and the Container's last log lines
//	WhoAmI              who the credentials are (SelfSubjectReview)
//	Allowed             one SelfSubjectAccessReview: may the credentials do it
//	ReadAhead           GETs sent at once ahead of a caller that sends them
//	                    one after the other (Helm's existence checks): the
//	                    later GET of a URL takes the answer, once; a write
//	                    drops the answers about what it may change
//	WriteGate           a transport that holds every write back until
//	                    opened, or fails them all unsent once shut: for
//	                    work started before it may change anything
//	AwaitBinding        SelfSubjectAccessReview, polled until the authorizer
//	                    has seen a RoleBinding just made
//
// Nothing here imports internal/release (internal/depcheck_test.go): the
// release engine decides which Deployment, which pods and which container,
// and names its own failures (release.RolloutError wraps RolloutError).
package kube

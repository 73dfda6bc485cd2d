package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// startFirewall runs the node's NetworkPolicy enforcer: kube-router's
// network-policy controller alone (iptables and ipset), on the host, so
// that the e2e proves shipper's NetworkPolicies against real packet
// filtering. It is a test-only enforcer: kube-router v2.1.0, the version
// the Go module proxy serves here, has reported security flaws that
// concern running it on a production cluster, and
// sigs.k8s.io/kube-network-policies, the first choice, cannot program its
// rules on this kind of machine (it queues packets with nftables' queue
// expression; the kernel has no CONFIG_NFT_QUEUE). Like every CNI's
// enforcer, it admits traffic from the pod's own node whatever the policy
// says: Traefik, on the host, is such traffic.
func (n *Node) startFirewall(ctx context.Context) error {
	kc, err := n.kubeconfig("kube-router", n.admin)
	if err != nil {
		return err
	}
	n.undo = append(n.undo, destroyIPSets)
	if err := n.start("kube-router", "--kubeconfig="+kc, "--run-firewall=true", "--run-router=false",
		"--run-service-proxy=false", "--hostname-override="+NodeName, "--health-port=0", "--metrics-port=0"); err != nil {
		return err
	}
	p := n.procs[len(n.procs)-1]
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		if p.exited() {
			return false, p.exitError()
		}
		return exec.Command("iptables", "-S", "KUBE-ROUTER-FORWARD").Run() == nil, nil
	})
	if err != nil {
		return fmt.Errorf("kube-router's firewall did not start (log %s): %w", p.log, err)
	}
	return nil
}

// destroyIPSets removes kube-router's ipsets, once the iptables rules that
// reference them are gone (cleanIptables: its chains are KUBE-*).
func destroyIPSets() {
	out, err := exec.Command("ipset", "list", "-n").Output()
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(out)) {
		bare := strings.TrimPrefix(name, "inet6:")
		if strings.HasPrefix(bare, "KUBE-") || strings.HasPrefix(bare, "TMP-") {
			_ = exec.Command("ipset", "destroy", name).Run()
		}
	}
}

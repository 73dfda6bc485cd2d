package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// stop tears the node down without leftovers: pods first while the kubelet
// still runs, then the processes, containers, iptables chains, mounts and
// host files.
func (n *Node) stop() {
	n.deletePods()
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.procs[i].stop(2 * time.Second)
	}
	n.procs = nil
	n.killShims()
	if bin, err := Binary("kube-proxy"); err == nil {
		_ = exec.Command(bin, "--cleanup").Run()
	}
	n.cleanIptables()
	n.unmountAll()
	removeCNIResults()
	for i := len(n.undo) - 1; i >= 0; i-- {
		n.undo[i]()
	}
	n.undo = nil
}

// deletePods removes every pod while the kubelet still runs, so that it
// tears their sandboxes down through CNI (IP addresses, iptables rules).
func (n *Node) deletePods() {
	if n.admin == nil {
		return
	}
	cs, err := kubernetes.NewForConfig(n.admin)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	// A graceful delete: the API object goes only once the kubelet has
	// stopped the pod and torn its sandbox down (a forced one goes at once).
	grace := int64(1)
	for _, p := range pods.Items {
		_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		left, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		return err == nil && len(left.Items) == 0, nil
	})
}

// removeCNIResults deletes libcni's cached results of this node's network
// ("shipper-<container>-eth0" and the loopback entries of those containers).
func removeCNIResults() {
	const dir = "/var/lib/cni/results"
	files, _ := filepath.Glob(filepath.Join(dir, "shipper-*"))
	for _, f := range files {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "shipper-"), "-eth0")
		_ = os.Remove(f)
		_ = os.Remove(filepath.Join(dir, "cni-loopback-"+id+"-lo"))
	}
}

// killShims stops the containerd shims (and so the containers) of test
// nodes: they outlive containerd by design, and a test binary that was
// killed leaves them running, so a new node also stops those of old ones.
//
// A container's processes are not in its shim's process group (runc starts
// each container in a session of its own) and outlive a killed shim,
// reparented to init: with pods the kubelet did not stop in time, they
// stayed running after the test. So the shims' children, the containers'
// first processes, are killed first; each is PID 1 of its container's PID
// namespace, and the kernel kills the rest of the namespace with it.
func (n *Node) killShims() {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	shims := map[string]bool{}
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), "containerd-shim") || !strings.Contains(string(b), "/"+dirPrefix) {
			continue
		}
		shims[strings.Split(f, "/")[2]] = true
	}
	if len(shims) == 0 {
		return
	}
	statuses, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, f := range statuses {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if ppid, ok := strings.CutPrefix(l, "PPid:"); ok && shims[strings.TrimSpace(ppid)] {
				_ = exec.Command("kill", "-KILL", strings.Split(f, "/")[2]).Run()
			}
		}
	}
	for pid := range shims {
		_ = exec.Command("kill", "-KILL", "--", "-"+pid).Run()
		_ = exec.Command("kill", "-KILL", pid).Run()
	}
}

// cleanIptables removes the chains kube-proxy and the CNI plugins made,
// and the jumps to them from the built-in chains.
func (n *Node) cleanIptables() {
	ours := func(target string) bool {
		return strings.HasPrefix(target, "CNI-") || strings.HasPrefix(target, "KUBE-")
	}
	for _, table := range []string{"filter", "nat", "mangle"} {
		for _, chain := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
			// -L --line-numbers: "num target prot ...", deleted from the bottom up.
			out, err := exec.Command("iptables", "-t", table, "-L", chain, "-n", "--line-numbers").Output()
			if err != nil {
				continue
			}
			var nums []string
			for _, l := range strings.Split(string(out), "\n") {
				f := strings.Fields(l)
				if len(f) > 1 && ours(f[1]) {
					nums = append(nums, f[0])
				}
			}
			for i := len(nums) - 1; i >= 0; i-- {
				_ = exec.Command("iptables", "-t", table, "-D", chain, nums[i]).Run()
			}
		}
		out, err := exec.Command("iptables", "-t", table, "-S").Output()
		if err != nil {
			continue
		}
		var chains []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "-N" && ours(f[1]) {
				chains = append(chains, f[1])
			}
		}
		for _, c := range chains {
			_ = exec.Command("iptables", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			_ = exec.Command("iptables", "-t", table, "-X", c).Run()
		}
	}
}

// unmountAll unmounts what containerd and the kubelet mounted under this
// node's directory and the CNI network namespaces.
func (n *Node) unmountAll() {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if strings.HasPrefix(mp, n.dir+"/") || strings.HasPrefix(mp, "/run/netns/cni-") {
			mounts = append(mounts, mp)
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- { // deepest last mounted first
		_ = exec.Command("umount", "-l", mounts[i]).Run()
	}
	netns, _ := filepath.Glob("/run/netns/cni-*")
	for _, ns := range netns {
		_ = os.Remove(ns)
	}
}

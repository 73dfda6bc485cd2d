package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one child of the Env: a binary with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done is closed
}

// startProcess starts bin with args, stdout and stderr going to
// dir/<name>.log, in a process group of its own whose ID it appends to
// dir/pids for the reaper. The kernel also kills the child if this process
// dies (Pdeathsig).
func startProcess(dir, name, bin string, args ...string) (*process, error) {
	return startProcessAs(dir, name, nil, bin, args...)
}

// startProcessAs is startProcess running as cred's user (nil: this
// process's), as PostgreSQL must when the tests run as root.
func startProcessAs(dir, name string, cred *syscall.Credential, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := appendLine(filepath.Join(dir, pidsFile), strconv.Itoa(cmd.Process.Pid)); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace. The
// data of every Env is thrown away, so there is nothing to flush: the grace
// only lets a process close its listeners (kube-apiserver can take over 30 s
// to stop with watches open, so it is not waited for).
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// exitError describes an early exit with the end of the process's log.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited: %v; last log lines:\n%s", p.name, p.err, tail(p.log, 15))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts returns n distinct free ports on 127.0.0.1. Another process can
// take one before ours binds it; callers retry a start that fails that way.
func freePorts(n int) ([]int, error) {
	// Hold every listener until all are chosen so the kernel cannot hand
	// out the same port twice.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// dirPrefix names the directory of every Env under os.TempDir().
const dirPrefix = "shipper-testenv-"

// newDir makes the directory of a new Env (or server), named prefix*
// under os.TempDir(), marked with this process as its owner, with a reaper
// that removes it when this process dies. Stale ones are swept first.
func newDir(prefix string) (string, *os.File, error) {
	sweepStale()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	reaper, err := startReaper(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, reaper, nil
}

// ownerFile holds the PID of the process that owns an Env directory.
const ownerFile = "owner.pid"

// sweepStale removes Env directories whose owner has died without calling
// Stop (a panic, a SIGKILL): their processes are already gone (Pdeathsig),
// only their files remain.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being created right now, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pidsFile lists the process groups of an Env, one per line.
const pidsFile = "pids"

// reaperScript waits for EOF on stdin, then kills the Env's process groups
// and removes its directory. $1 is the directory. --one-file-system keeps
// rm out of anything still mounted below it (a real node's pod volumes).
const reaperScript = `read _; for p in $(cat "$1/` + pidsFile + `" 2>/dev/null); do kill -KILL -- "-$p" 2>/dev/null; done; rm -rf --one-file-system -- "$1"`

// startReaper starts a watchdog that cleans up dir once the returned pipe
// closes: on Stop, or when this process dies in any way, including a test
// that panics (Go runs no deferred code then) or a SIGKILL. Pdeathsig
// alone would stop the processes but leave dir behind. The reaper runs in
// its own session so a signal to the test's process group does not take
// it down before it has cleaned up.
func startReaper(dir string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "testenv-reaper", dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting the reaper: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return w, nil
}

package e2e_test

import "syscall"

// childAttr puts a child in its own process group, so stopping it stops
// everything it spawned, and has the kernel kill it if the test binary dies
// without running its cleanups (a panic on -timeout, say).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

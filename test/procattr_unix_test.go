//go:build unix && !linux

package e2e_test

import "syscall"

// childAttr puts a child in its own process group, so stopping it stops
// everything it spawned.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

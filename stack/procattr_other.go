//go:build !linux

package stack

import "syscall"

// sysProcAttr puts a child in its own process group, so a Ctrl-C reaches only
// the supervisor, which stops children in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

package stack

import "syscall"

// sysProcAttr puts a child in its own process group, so a Ctrl-C reaches only
// the supervisor, which stops children in order; and has the kernel stop the
// child if the supervisor dies first, so no process is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

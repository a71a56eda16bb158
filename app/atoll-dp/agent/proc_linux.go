package agent

import "syscall"

// childProcAttr puts Envoy in its own process group, so that a Ctrl-C in a
// terminal reaches only the agent (which drains Envoy first), and asks the
// kernel to send Envoy SIGTERM should the agent die without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

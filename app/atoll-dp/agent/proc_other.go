//go:build unix && !linux

package agent

import "syscall"

// childProcAttr puts Envoy in its own process group, so that a Ctrl-C in a
// terminal reaches only the agent, which drains Envoy first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

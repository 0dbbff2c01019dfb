package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent asks the kernel to send the child SIGTERM when this
// process dies, so that a killed `easbench compare` leaves no fake CAS,
// easgate or nginx behind.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}

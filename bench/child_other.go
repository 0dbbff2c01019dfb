//go:build !linux

package bench

import "os/exec"

// dieWithParent has no portable equivalent of Linux's parent-death
// signal: elsewhere children are stopped by Compare only.
func dieWithParent(*exec.Cmd) {}

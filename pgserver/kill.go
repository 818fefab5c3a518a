package pgserver

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// killedChild is a postmaster child that killTree sent SIGKILL: its PID and
// start time, so a PID reused meanwhile is not mistaken for it.
type killedChild struct {
	pid   int
	start uint64
}

// killTree SIGKILLs the postmaster and its children, and returns the
// children it signalled. Killing only the postmaster leaves backends
// attached to the shared memory segment for a while, and a new postmaster
// refuses to start while they are. Backends call setsid(), so a
// process-group kill would not reach them; instead the postmaster is frozen
// first so it cannot fork replacements, then its children are found through
// /proc. Signals to the postmaster go through os.Process so they cannot hit
// a recycled PID; while it is stopped it cannot be reaped, so its PID is
// safe to match against children's parent PIDs.
func killTree(proc *os.Process) ([]killedChild, error) {
	pid := proc.Pid
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil, nil
		}
		return nil, fmt.Errorf("freeze postmaster %d: %w", pid, err)
	}
	var errs []error
	var killed []killedChild
	entries, err := os.ReadDir("/proc")
	if err != nil {
		errs = append(errs, fmt.Errorf("list children of postmaster %d: %w", pid, err))
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		info, err := readProcStat(child)
		if err != nil || info.ppid != pid {
			continue
		}
		if err := syscall.Kill(child, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill postgres child %d: %w", child, err))
			continue
		}
		killed = append(killed, killedChild{pid: child, start: info.start})
	}
	if err := proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("kill postmaster %d: %w", pid, err))
	}
	return killed, errors.Join(errs...)
}

// waitChildrenGone waits until every killed child has exited, and returns
// those still running at the deadline. SIGKILL is not instant: a backend
// leaves only once the kernel has torn down its memory, and until then it
// is still attached to the shared memory segment, so a new postmaster
// started at once fails with "pre-existing shared memory block is still in
// use". A zombie has already detached (its memory is gone before it becomes
// one), so it counts as gone: it waits for a parent that may never reap it,
// since the children of a killed postmaster are re-parented to PID 1.
func waitChildrenGone(children []killedChild, deadline time.Time) []int {
	for {
		var alive []int
		for _, c := range children {
			info, err := readProcStat(c.pid)
			if err != nil || info.start != c.start || info.state == 'Z' || info.state == 'X' {
				continue // gone, its PID reused, or a zombie
			}
			alive = append(alive, c.pid)
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(5 * time.Millisecond)
	}
}

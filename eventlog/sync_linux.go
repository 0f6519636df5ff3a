package eventlog

import (
	"os"
	"syscall"
)

// fdatasync flushes file data (and the size, when it changed) without
// forcing unrelated metadata such as mtime: cheaper than fsync for a log.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

//go:build !linux

package eventlog

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func lockFile(f *os.File) error { return nil }

func allocate(f *os.File, size int64) error { return nil }

package eventlog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Durability says when an append is acknowledged relative to fsync.
type Durability uint8

const (
	// SyncAlways acknowledges an append only after the segment holding it has
	// been fsynced (fdatasync). Appends waiting together share one fsync
	// (group commit). The default.
	SyncAlways Durability = iota
	// SyncInterval acknowledges once the append is written to the OS and
	// fsyncs every Options.SyncInterval: a machine crash may lose the last
	// interval's acknowledged appends, a process crash loses nothing.
	SyncInterval
	// SyncNone never fsyncs except at Close: for tests and benchmarks.
	SyncNone
)

func (d Durability) String() string {
	switch d {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("Durability(%d)", d)
}

// ParseDurability parses "always", "interval" or "none".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "", "always", "sync":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("eventlog: durability %q: want always, interval or none", s)
}

// VerifyMode says how much of the log Open checks.
type VerifyMode uint8

const (
	// VerifyTail checks every record of the last segment and of any part of
	// the log the stream index does not cover yet; sealed, indexed segments
	// are checked when read and by Verify. The default: open time does not
	// grow with the size of the log.
	VerifyTail VerifyMode = iota
	// VerifyAll checks every record of every segment at open.
	VerifyAll
)

// Options configure a Log. The zero value is valid: every field documents
// its default.
type Options struct {
	// Durability of acknowledged appends. Default SyncAlways.
	Durability Durability
	// SyncInterval is how often SyncInterval mode fsyncs. Default 10ms.
	SyncInterval time.Duration
	// SegmentSize is the size in bytes at which a segment is sealed and a new
	// one started. Default 256 MiB; at least 64 KiB.
	SegmentSize int64
	// MaxEventSize caps one event's type, data and metadata together, in
	// bytes. Default 1 MiB; at most 64 MiB.
	MaxEventSize int
	// MaxBatchBytes caps how many bytes the writer gathers into one write and
	// fsync. Default 4 MiB.
	MaxBatchBytes int
	// Verify says how much of the log Open checks. Default VerifyTail.
	Verify VerifyMode
	// Logger receives operational messages (recovery, truncation). Default:
	// discard.
	Logger *slog.Logger
	// Now supplies record times. Default time.Now.
	Now func() time.Time
}

const (
	defaultSegmentSize   = 256 << 20
	minSegmentSize       = 64 << 10
	defaultMaxEventSize  = 1 << 20
	maxMaxEventSize      = 64 << 20
	defaultMaxBatchBytes = 4 << 20
	defaultSyncInterval  = 10 * time.Millisecond
)

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.SyncInterval == 0 {
		o.SyncInterval = defaultSyncInterval
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = defaultSegmentSize
	}
	if o.MaxEventSize == 0 {
		o.MaxEventSize = defaultMaxEventSize
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = defaultMaxBatchBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports every problem with o, joined.
func (o *Options) Validate() error {
	var errs []error
	if o.Durability > SyncNone {
		errs = append(errs, fmt.Errorf("eventlog: unknown durability %d", o.Durability))
	}
	if o.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("eventlog: SyncInterval %v is negative", o.SyncInterval))
	}
	if o.SegmentSize != 0 && o.SegmentSize < minSegmentSize {
		errs = append(errs, fmt.Errorf("eventlog: SegmentSize %d is below the minimum %d", o.SegmentSize, minSegmentSize))
	}
	if o.MaxEventSize < 0 || o.MaxEventSize > maxMaxEventSize {
		errs = append(errs, fmt.Errorf("eventlog: MaxEventSize %d is outside 1..%d", o.MaxEventSize, maxMaxEventSize))
	}
	if o.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("eventlog: MaxBatchBytes %d is negative", o.MaxBatchBytes))
	}
	if o.Verify > VerifyAll {
		errs = append(errs, fmt.Errorf("eventlog: unknown verify mode %d", o.Verify))
	}
	return errors.Join(errs...)
}

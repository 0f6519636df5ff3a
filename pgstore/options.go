package pgstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options configure a Store. The zero value is valid: every field documents
// its default.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables and
	// functions; Open creates it if needed. Several stores may share a
	// database in different schemas. Default "public".
	Schema string
	// MaxConns caps the connection pool (the LISTEN connection comes on
	// top). Default: pgxpool's default, or pool_max_conns in the URL.
	MaxConns int32
	// MaxEventSize caps one event's type, data and metadata together, in
	// bytes. Default 1 MiB; at most 64 MiB.
	MaxEventSize int
	// MaxBatch caps how many appends the writer gathers into one database
	// transaction (group commit). Default 256.
	MaxBatch int
	// MaxBatchBytes caps the event bytes of one group; an append larger than
	// this goes alone. Default 4 MiB.
	MaxBatchBytes int
	// PollInterval is how long a waiting subscriber or appender goes without
	// looking at the database when no notification arrives, and how often
	// an idle store runs a sequencer round for rows other processes
	// committed but did not position (a process that died between its
	// commit and its round). Notifications make waits much shorter in
	// practice; the poll only bounds them. Default 250ms.
	PollInterval time.Duration
	// StallAfter is how long committed events may wait for an older open
	// transaction before the store names it (Stall, and a warning in the
	// log). Default 2s.
	StallAfter time.Duration
	// Logger receives the warnings about long-open transactions. Default:
	// slog.Default().
	Logger *slog.Logger
}

const (
	defaultSchema        = "public"
	defaultMaxEventSize  = 1 << 20
	maxMaxEventSize      = 64 << 20
	defaultMaxBatch      = 256
	defaultMaxBatchBytes = 4 << 20
	defaultPollInterval  = 250 * time.Millisecond
	// maxIdentLen is PostgreSQL's limit on identifiers (NAMEDATALEN-1).
	maxIdentLen = 63
)

// ensureDefaults fills zero fields with their defaults.
func (o *Options) ensureDefaults() {
	if o.Schema == "" {
		o.Schema = defaultSchema
	}
	if o.MaxEventSize == 0 {
		o.MaxEventSize = defaultMaxEventSize
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = defaultMaxBatchBytes
	}
	if o.PollInterval == 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.StallAfter == 0 {
		o.StallAfter = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// validate reports every problem with o, joined.
func (o *Options) validate() error {
	var errs []error
	if len(o.Schema) > maxIdentLen {
		errs = append(errs, fmt.Errorf("pgstore: schema name %q is longer than %d bytes", o.Schema, maxIdentLen))
	}
	for i := 0; i < len(o.Schema); i++ {
		if o.Schema[i] == 0 {
			errs = append(errs, fmt.Errorf("pgstore: schema name %q contains NUL", o.Schema))
			break
		}
	}
	if o.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("pgstore: MaxConns %d is negative", o.MaxConns))
	}
	if o.MaxEventSize < 0 || o.MaxEventSize > maxMaxEventSize {
		errs = append(errs, fmt.Errorf("pgstore: MaxEventSize %d is outside 1..%d", o.MaxEventSize, maxMaxEventSize))
	}
	if o.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("pgstore: MaxBatch %d is negative", o.MaxBatch))
	}
	if o.MaxBatchBytes < 0 {
		errs = append(errs, fmt.Errorf("pgstore: MaxBatchBytes %d is negative", o.MaxBatchBytes))
	}
	if o.StallAfter < 0 {
		errs = append(errs, fmt.Errorf("pgstore: StallAfter %v is negative", o.StallAfter))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("pgstore: PollInterval %v is negative", o.PollInterval))
	}
	return errors.Join(errs...)
}

package pgstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stratadb/strata/store"
)

// Store is the PostgreSQL event store. It implements store.Store; all
// methods are safe for concurrent use, also by several Stores (processes,
// nodes) on the same schema.
//
// Goroutines: the writer (writer.go) gathers concurrent appends into one
// transaction and runs a sequencer round after it; the acker (acker.go)
// holds the appends whose rows could not be positioned at once and
// acknowledges them when they are, running rounds itself; the listener
// (listen.go) turns NOTIFY into local wake-ups.
type Store struct {
	opts    Options
	pool    *pgxpool.Pool
	q       queries
	schema  string // quoted
	key     int32  // second advisory lock key, from the schema name
	channel string // NOTIFY channel of this schema

	queue  chan *appendReq
	ackCh  chan []*pendingAck // writer → acker; closed by the writer when it stops
	notify notifier

	// positioned remembers, per stream, a version known to be positioned
	// (and so every version before it): a failed append can then report
	// the version that beat it without waiting for it.
	positioned positionCache
	placed     placements

	// inflight is how many appends the committers have sent and not yet
	// settled; landed wakes a committer waiting for the other's group.
	inflight atomic.Int32
	landed   chan struct{}

	// commits counts committed group transactions, carried the appends
	// carried into a newer transaction (statusAgain). Tests watch them.
	commits atomic.Uint64
	carried atomic.Uint64

	// appendMu orders sends on queue against Close: appenders hold it
	// shared while they send, Close takes it exclusively to set closed,
	// after which nothing new reaches the queue and the writer can drain it.
	appendMu struct {
		sync.RWMutex
		closed bool
	}

	ctx          context.Context // cancelled when Close has stopped the writer and acker
	cancel       context.CancelFunc
	quit         chan struct{} // closed by Close: the writer drains and stops
	closedCh     chan struct{} // closed by Close: reads and subscriptions end
	writerDone   chan struct{}
	ackerDone    chan struct{}
	listenerDone chan struct{}
	stallDone    chan struct{}
	stall        stallWatch
	closeOnce    sync.Once
	closeErr     error
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a PostgreSQL URL or key=value
// string, as pgx takes them), applies the embedded migrations to the schema
// Options name (creating it if needed), and starts the store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.ensureDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse database URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// Whatever the server's or role's default: the functions and the
	// migration rely on every statement seeing what committed before it
	// (and say so if they do not get it).
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "strata-pgstore"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	key := schemaKey(opts.Schema)
	adopted, err := migrate(ctx, pool, opts.Schema, key)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if adopted > 0 {
		opts.Logger.Warn("pgstore: this schema was restored from another cluster; positioned the transactions that were waiting when it was dumped",
			"schema", opts.Schema, "transactions", adopted)
	}
	s := &Store{
		opts:         opts,
		pool:         pool,
		schema:       pgx.Identifier{opts.Schema}.Sanitize(),
		key:          key,
		channel:      channelName(opts.Schema),
		queue:        make(chan *appendReq, 4*opts.MaxBatch),
		landed:       make(chan struct{}, 1),
		ackCh:        make(chan []*pendingAck, 64),
		quit:         make(chan struct{}),
		closedCh:     make(chan struct{}),
		writerDone:   make(chan struct{}),
		ackerDone:    make(chan struct{}),
		listenerDone: make(chan struct{}),
		stallDone:    make(chan struct{}),
	}
	s.q = newQueries(s.schema)
	s.notify.init()
	s.positioned.init()
	s.ctx, s.cancel = context.WithCancel(context.Background())

	// The first LISTEN happens here, so that a subscriber starting right
	// after Open is woken by the first round.
	conn, err := s.listen(ctx, cfg.ConnConfig)
	if err != nil {
		s.cancel()
		pool.Close()
		return nil, err
	}
	go s.runListener(conn, cfg.ConnConfig)
	go s.runWriters()
	go s.runAcker()
	go s.runStallWatch()
	return s, nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, store.ErrClosed
	}
	var head int64
	if err := s.pool.QueryRow(ctx, s.q.head).Scan(&head); err != nil {
		return 0, s.readErr(ctx, "read head", err)
	}
	return uint64(head), nil
}

// Close implements store.Store. Appends already queued are still written;
// an append whose transaction committed but whose rows cannot be positioned
// within closeGrace (an older transaction is still open somewhere) fails
// with ErrClosed: it is in the log, and a retry with the same ids returns
// its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.appendMu.Lock()
		s.appendMu.closed = true
		s.appendMu.Unlock()
		close(s.closedCh)
		close(s.quit)
		<-s.writerDone
		<-s.ackerDone
		s.cancel()
		<-s.listenerDone
		<-s.stallDone
		s.pool.Close()
	})
	return s.closeErr
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closedCh:
		return true
	default:
		return false
	}
}

// readErr turns the error of a read into what the caller should see: the
// context's error when the context ended, ErrClosed when the store closed
// under the read, else err with context.
func (s *Store) readErr(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if s.isClosed() {
		return store.ErrClosed
	}
	return fmt.Errorf("pgstore: %s: %w", what, err)
}

// schemaKey is the second advisory lock key for schema.
func schemaKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int32(h.Sum32())
}

// channelName is the NOTIFY channel of schema's rounds: strata_events for
// public, strata_events_<schema> otherwise (a hash when that is too long for
// an identifier).
func channelName(schema string) string {
	const prefix = "strata_events"
	if schema == defaultSchema {
		return prefix
	}
	if name := prefix + "_" + schema; len(name) <= maxIdentLen {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return prefix + "_" + hex.EncodeToString(h.Sum(nil))
}

// notifier wakes every waiter at once: waiters take the current channel
// before they look at the database, and broadcast closes it.
type notifier struct {
	mu sync.Mutex
	ch atomic.Pointer[chan struct{}]
}

func (n *notifier) init() {
	ch := make(chan struct{})
	n.ch.Store(&ch)
}

// wait returns the channel the next broadcast closes.
func (n *notifier) wait() <-chan struct{} { return *n.ch.Load() }

func (n *notifier) broadcast() {
	next := make(chan struct{})
	n.mu.Lock()
	old := n.ch.Swap(&next)
	close(*old)
	n.mu.Unlock()
}

// positionCache records, per stream, a version known to be positioned.
// Positioning is permanent and goes in version order within a stream, so
// every version up to the recorded one is positioned too. The cache only
// saves round trips; it forgets everything when it grows too large.
type positionCache struct {
	mu sync.Mutex
	m  map[string]uint64
}

const positionCacheMax = 1 << 16

func (c *positionCache) init() { c.m = make(map[string]uint64) }

func (c *positionCache) add(stream string, version uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[stream] >= version {
		return
	}
	if len(c.m) >= positionCacheMax {
		clear(c.m)
	}
	c.m[stream] = version
}

func (c *positionCache) has(stream string, version uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[stream] >= version
}

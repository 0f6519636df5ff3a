package eventlog

import (
	"os"
	"sync"
	"sync/atomic"
)

const (
	// preallocChunk is how much the preallocator zero-fills at once, and
	// preallocAhead how far ahead of the writer it keeps the active segment
	// filled.
	preallocChunk = 4 << 20
	preallocAhead = 8 << 20
	// preallocMaxSyncBytes: zero-filling pays while fsyncs are small.
	// Measured here, it saves ~130 µs on an fsync of ~25 KB (256 writers of
	// single events) and costs about as much CPU as writing the data, which
	// outweighs what it saves once each fsync carries over ~100 KB (batched
	// appends: -13 % throughput with it).
	preallocMaxSyncBytes = 64 << 10
)

var zeroChunk = make([]byte, preallocChunk)

// preallocator writes zeros ahead of the writer in the active segment and
// fsyncs them. The segment is fallocated when it is created (see allocate),
// but its blocks stay "unwritten" until written, and the fdatasync after
// the first write into one must commit that change to the filesystem
// journal. Overwriting blocks already written with zeros and made durable
// lets the writer's fdatasync flush data alone: about 150 µs instead of
// 230 µs here. It is only an optimisation: a writer that catches up simply
// writes into unwritten blocks.
//
// The one rule is that zeros never land on data: a fill covers only bytes at
// or past the writer's end when it starts, and the writer waits before
// writing into a fill in progress.
type preallocator struct {
	mu struct {
		sync.Mutex
		f         *os.File // active segment; nil when stopped
		zeroed    int64    // end of the durable zero-filled region
		writerEnd int64    // end of the writer's data
		limit     int64    // never fill past this
		filling   bool     // a fill of [fillStart, fillStart+chunk) runs
		fillStart int64
		quit      bool
	}
	cond *sync.Cond
	wake chan struct{}
	done chan struct{}
	// syncBytes is a moving average of the bytes each group-commit fsync
	// carries (observeSync), which decides whether filling pays.
	syncBytes atomic.Int64
}

// observeSync records the size of one fsync's data.
func (p *preallocator) observeSync(bytes int64) {
	old := p.syncBytes.Load()
	p.syncBytes.Store(old + (bytes-old)/8)
}

func (p *preallocator) worthIt() bool { return p.syncBytes.Load() < preallocMaxSyncBytes }

func newPreallocator() *preallocator {
	p := &preallocator{wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu.Mutex)
	return p
}

// start makes f, whose data ends at end, the file to fill, up to limit
// (0: fill nothing). Whatever lies past end may be unwritten blocks, so
// filling starts there.
func (p *preallocator) start(f *os.File, end, limit int64) {
	p.mu.Lock()
	p.mu.f, p.mu.writerEnd, p.mu.zeroed, p.mu.limit = f, end, end, limit
	p.mu.Unlock()
	p.signal()
}

// stop waits for a fill in progress and fills no more: the writer is about
// to truncate or close f.
func (p *preallocator) stop() {
	p.mu.Lock()
	for p.mu.filling {
		p.cond.Wait()
	}
	p.mu.f = nil
	p.mu.Unlock()
}

// beforeWrite is called by the writer before it writes up to end.
func (p *preallocator) beforeWrite(f *os.File, off, end int64) {
	p.mu.Lock()
	for p.mu.filling && p.mu.f == f && end > p.mu.fillStart {
		p.cond.Wait()
	}
	p.mu.writerEnd = end
	need := p.mu.f == f && p.mu.zeroed-end < preallocAhead && p.mu.zeroed < p.mu.limit && p.worthIt()
	p.mu.Unlock()
	if need {
		p.signal()
	}
}

func (p *preallocator) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *preallocator) close() {
	p.mu.Lock()
	p.mu.quit = true
	p.mu.Unlock()
	p.signal()
	<-p.done
}

// run fills until close. Fill errors are not the log's problem: the writer
// then extends the file as it would without preallocation.
func (p *preallocator) run() {
	defer close(p.done)
	for range p.wake {
		for {
			p.mu.Lock()
			f := p.mu.f
			start := max(p.mu.zeroed, p.mu.writerEnd)
			if p.mu.quit || f == nil || start-p.mu.writerEnd >= preallocAhead || start >= p.mu.limit || !p.worthIt() {
				quit := p.mu.quit
				p.mu.Unlock()
				if quit {
					return
				}
				break
			}
			n := min(int64(preallocChunk), p.mu.limit-start)
			p.mu.filling, p.mu.fillStart = true, start
			p.mu.Unlock()

			_, err := f.WriteAt(zeroChunk[:n], start)
			if err == nil {
				err = fdatasync(f)
			}

			p.mu.Lock()
			p.mu.filling = false
			if err == nil && p.mu.f == f {
				p.mu.zeroed = start + n
			} else if err != nil {
				p.mu.f = nil // stop trying on this segment
			}
			p.cond.Broadcast()
			p.mu.Unlock()
		}
	}
}

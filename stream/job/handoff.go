package job

import (
	"context"
	"sync"
)

// handoff passes items from a producer goroutine to a consumer in batches
// whose size follows the consumer's pace: the consumer takes everything
// queued whenever it comes back, so a quiet source's last items never wait
// for a batch to fill, and a busy one costs a lock per item rather than a
// channel operation. The producer blocks once max items wait.
type handoff[T any] struct {
	mu     sync.Mutex
	buf    []T
	closed bool
	max    int
	wake   chan struct{} // cap 1: something to take
	room   chan struct{} // cap 1: room to put
}

func newHandoff[T any](max int) *handoff[T] {
	return &handoff[T]{max: max, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// put queues x; false when ctx ended first.
func (h *handoff[T]) put(ctx context.Context, x T) bool {
	h.mu.Lock()
	for len(h.buf) >= h.max {
		h.mu.Unlock()
		select {
		case <-h.room:
		case <-ctx.Done():
			return false
		}
		h.mu.Lock()
	}
	h.buf = append(h.buf, x)
	h.mu.Unlock()
	signal(h.wake)
	return true
}

// close says nothing more will be put.
func (h *handoff[T]) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	signal(h.wake)
}

// take returns everything queued, reusing spare's storage for the next
// batch; closed is true once the producer closed and nothing is left.
func (h *handoff[T]) take(spare []T) (batch []T, closed bool) {
	h.mu.Lock()
	batch, h.buf = h.buf, spare[:0]
	closed = h.closed && len(batch) == 0
	h.mu.Unlock()
	signal(h.room)
	return batch, closed
}

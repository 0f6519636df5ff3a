package eventlog

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/stratadb/strata/store"
)

// syncedGroup is a run of items the syncer has made durable (or failed to),
// on its way to the acker.
type syncedGroup struct {
	items []*syncItem
	err   error
}

// runSyncer makes written items durable and hands them, in the order the
// writer wrote them, to the acker, which publishes them and acknowledges
// their requests. It takes every item waiting, so one fdatasync covers all
// of them (group commit); items written while it syncs wait for the next
// round. Publishing on another goroutine lets the next fsync start while the
// last group's appenders are being woken.
func (l *Log) runSyncer() {
	acks := make(chan syncedGroup, 16)
	ackerDone := make(chan struct{})
	go l.runAcker(acks, ackerDone)
	defer func() {
		close(acks)
		<-ackerDone
		close(l.syncerDone)
	}()
	var tick <-chan time.Time
	if l.opts.Durability == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	var active *os.File // the write handle of the newest segment seen
	dirty := false      // active has unsynced writes (interval mode)
	var lastHead uint64 // head of the newest item seen
	for {
		var it *syncItem
		var ok bool
		select {
		case it, ok = <-l.syncCh:
		case <-tick:
			if dirty && l.stickyErr() == nil {
				if err := fdatasync(active); err != nil {
					l.setSticky(fmt.Errorf("sync: %w", err))
				} else {
					l.synced.Store(lastHead)
				}
				dirty = false
			}
			continue
		}
		if !ok {
			return // the writer's final item synced and closed the active segment
		}
		items := l.gather([]*syncItem{it})
		l.syncItems(items)
		last := items[len(items)-1]
		if l.stickyErr() == nil && (l.opts.Durability == SyncAlways || last.final) {
			l.synced.Store(last.head) // before the indexer can see these items
		}
		if lastHead = last.head; last.seal || last.final {
			active, dirty = nil, false
		} else {
			active, dirty = last.f, l.opts.Durability == SyncInterval
		}
		n := 0
		for _, it := range items {
			n += len(it.reqs)
		}
		l.inflight.Add(-int64(n))
		acks <- syncedGroup{items: items, err: l.stickyErr()}
	}
}

// runAcker publishes synced groups in order and acknowledges their appends.
func (l *Log) runAcker(acks <-chan syncedGroup, done chan<- struct{}) {
	defer close(done)
	for g := range acks {
		l.publish(g.items, g.err)
	}
}

// gatherRounds bounds how many writer items one fsync waits for.
const gatherRounds = 8

// gather adds the items the writer has ready to items, and in SyncAlways
// mode waits for appends that are already on their way: queued, being
// written, or just entering the queue (l.inflight counts them). Without
// this, concurrent appenders split into two groups that alternate, each
// paying a whole fsync: the first of them to come back after an
// acknowledgement would start an fsync alone. It never waits on a timer,
// only for work in progress, and not while the writer itself waits for the
// syncer (a retry check in waitPublished).
func (l *Log) gather(items []*syncItem) []*syncItem {
	reqs := 0
	for _, it := range items {
		reqs += len(it.reqs)
	}
	for round := 0; ; round++ {
	drain:
		for {
			select {
			case it, ok := <-l.syncCh:
				if !ok {
					return items // the closed channel is seen again by the caller
				}
				items = append(items, it)
				reqs += len(it.reqs)
			default:
				break drain
			}
		}
		last := items[len(items)-1]
		if l.opts.Durability != SyncAlways || round == gatherRounds || last.seal || last.final {
			return items
		}
		if round == 0 {
			// Appenders woken by the last acknowledgement are runnable but
			// may not have run yet: let them reach Append first.
			runtime.Gosched()
		}
		if l.writerBlocked.Load() || l.inflight.Load() <= int64(reqs) {
			return items
		}
		it, ok := <-l.syncCh
		if !ok {
			return items
		}
		items = append(items, it)
		reqs += len(it.reqs)
	}
}

// syncItems fsyncs what the durability mode asks for and closes the write
// handles of sealed segments, and of the active one at Close.
func (l *Log) syncItems(items []*syncItem) {
	var bytes int64
	reqs := 0
	for _, it := range items {
		bytes += it.end - it.start
		reqs += len(it.reqs)
	}
	synced := false
	defer func() {
		if synced {
			l.countSyncBatch(reqs)
		}
	}()
	l.prealloc.observeSync(bytes)
	for i, it := range items {
		last := i == len(items)-1 || items[i+1].f != it.f
		if !last {
			continue
		}
		mustSync := l.opts.Durability == SyncAlways || it.final ||
			it.seal && l.opts.Durability == SyncInterval
		if mustSync && l.stickyErr() == nil {
			l.syncs.Add(1)
			synced = true
			start := time.Now()
			err := fdatasync(it.f)
			l.syncNs.Add(int64(time.Since(start)))
			if err != nil {
				l.setSticky(fmt.Errorf("sync segment %s: %w", it.seg.name, err))
			}
		}
		if it.seal || it.final {
			it.f.Close()
		}
	}
}

// publish makes the items visible (tail index, sparse index, view), wakes
// subscribers, feeds the indexer and acknowledges the requests. After a
// sync failure (err) nothing is published and every request fails.
func (l *Log) publish(items []*syncItem, err error) {
	if err != nil {
		for _, it := range items {
			for _, r := range it.reqs {
				if r.err == nil {
					r.err, r.res = err, store.AppendResult{}
				}
				close(r.done)
			}
		}
		l.wake()
		return
	}
	old := l.view.Load()
	nv := &view{head: old.head, segs: old.segs, end: old.end}
	for _, it := range items {
		l.tail.add(it.entries)
		l.sparse.add(it.sparse...)
		l.indexer.push(it.entries, it.sparse)
		if nv.segs[len(nv.segs)-1] != it.seg {
			nv.segs = append(nv.segs[:len(nv.segs):len(nv.segs)], it.seg)
		}
		nv.head, nv.end = it.head, it.end
	}
	l.view.Store(nv)
	l.wake()
	l.indexer.signal()
	for _, it := range items {
		l.acked.Add(uint64(len(it.reqs)))
		for _, r := range it.reqs {
			close(r.done)
		}
	}
}

// wake closes the current notification channel: everyone waiting for a new
// view looks again.
func (l *Log) wake() {
	ch := make(chan struct{})
	old := l.notify.Swap(&ch)
	close(*old)
}

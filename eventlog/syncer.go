package eventlog

import (
	"fmt"
	"os"
	"time"

	"github.com/stratadb/strata/store"
)

// runSyncer makes written items durable, publishes them and acknowledges
// their requests, in the order the writer wrote them. It takes every item
// waiting, so one fdatasync covers all of them (group commit); items written
// while it syncs wait for the next round.
func (l *Log) runSyncer() {
	defer close(l.syncerDone)
	var tick <-chan time.Time
	if l.opts.Durability == SyncInterval {
		t := time.NewTicker(l.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	var active *os.File // the write handle of the newest segment seen
	dirty := false      // active has unsynced writes (interval mode)
	var items []*syncItem
	for {
		var it *syncItem
		var ok bool
		select {
		case it, ok = <-l.syncCh:
		case <-tick:
			if dirty && l.stickyErr() == nil {
				if err := fdatasync(active); err != nil {
					l.setSticky(fmt.Errorf("sync: %w", err))
				}
				dirty = false
			}
			continue
		}
		if !ok {
			return // the writer's final item synced and closed the active segment
		}
		items = append(items[:0], it)
	gather:
		for {
			select {
			case it, ok := <-l.syncCh:
				if !ok {
					break gather // seen again at the top of the loop
				}
				items = append(items, it)
			default:
				break gather
			}
		}
		l.syncItems(items)
		if last := items[len(items)-1]; last.seal || last.final {
			active, dirty = nil, false
		} else {
			active, dirty = last.f, l.opts.Durability == SyncInterval
		}
		l.publish(items)
		clear(items)
	}
}

// syncItems fsyncs what the durability mode asks for and closes the write
// handles of sealed segments, and of the active one at Close.
func (l *Log) syncItems(items []*syncItem) {
	for i, it := range items {
		last := i == len(items)-1 || items[i+1].f != it.f
		if !last {
			continue
		}
		mustSync := l.opts.Durability == SyncAlways || it.final ||
			it.seal && l.opts.Durability == SyncInterval
		if mustSync && l.stickyErr() == nil {
			if err := fdatasync(it.f); err != nil {
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
// sync failure nothing is published and every request fails.
func (l *Log) publish(items []*syncItem) {
	if err := l.stickyErr(); err != nil {
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

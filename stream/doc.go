// Package stream is Strata's windowing engine: a deterministic state machine
// in the manner of etcd's raft RawNode. Events and watermarks go in, window
// results come out; there are no clocks, goroutines or I/O inside, so the
// same input always gives the same output, which is what makes checkpoints,
// recovery and scenario tests exact.
//
// Time is event time in milliseconds. The semantics are Apache Flink's:
// windows are [start, end); a watermark W means no more events with
// timestamp ≤ W; a window fires when W ≥ end−1; allowed lateness keeps a
// window until W ≥ end−1+lateness and fires it again for each late event that
// reaches it; events later than that are reported late, never dropped
// silently; end of input is a watermark at +∞ (EndOfInput).
//
// Window kinds: tumbling and sliding windows are sliced into panes (each
// event is stored once, in one pane, whatever size/slide is), sessions merge
// when an event bridges them, and lookback gives, for every event, the
// aggregate over the preceding span of its key: the exact answer to "more than
// 10 in any 60 s". Sliding and lookback windows keep a running aggregate
// (O(1) per event for aggregators that can retract, a two-stacks queue for the
// others).
//
// The runner that feeds an Engine from the log, checkpoints it and spreads
// keys over cores lives in stream/job.
package stream

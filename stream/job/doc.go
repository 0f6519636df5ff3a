// Package job runs stream engines: it reads inputs from a source (the log,
// or JSON lines), spreads keys over partitions (one goroutine and one
// stream.Engine each), generates watermarks, checkpoints every engine with
// the input position, and hands results to a sink in a deterministic order.
//
// It is the node to stream's RawNode: clocks, goroutines and I/O live here,
// the windowing logic does not.
//
// Exactly the same output after a crash: the reader puts a barrier into
// every partition's input every CheckpointEvery inputs; at a barrier each
// partition snapshots its engine and hands over what it emitted since the
// last one. The coordinator sorts those results by the input position that
// caused them (then partition, then emission order, so the order does not
// depend on where barriers fall), writes them to the sink, makes the sink
// durable, and only then writes the checkpoint (engines, reader state, the
// sink's mark) atomically. A restarted job rewinds the sink to the mark and
// resumes after the checkpoint's position: what it writes again is what the
// uninterrupted run wrote. Sinks that cannot rewind (stdout, callbacks) see
// results again after a crash; each result has a deterministic ID to drop
// them by.
package job

// Package app is the composition root of `strata serve`: it puts the
// store, the fraud rules and the HTTP server together, and takes them apart
// in order on shutdown.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stratadb/strata/aggregate"
	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/internal/atomicfile"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/internal/readmodels"
	"github.com/stratadb/strata/internal/server"
	"github.com/stratadb/strata/projection"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/rules/alerts"
	"github.com/stratadb/strata/store"
)

// Config is what Serve runs.
type Config struct {
	Store   store.Store // opened by the caller, closed by the caller
	DataDir string      // where the rules keep their checkpoint (DataDir/rules)
	// Addr is where the API listens (127.0.0.1:7070; port 0 picks one).
	Addr         string
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Tokens are the API tokens; none: loopback clients only.
	Tokens []config.Token
	// TLS, when its files are named, serves HTTPS.
	TLS config.TLS
	// Demo runs generators of card transactions and orders.
	Demo bool
	// LogIdentity names the log (its kind and place). What the data
	// directory derives from a log (read models, checkpoints) is only
	// valid for that log: Serve refuses a directory that was used with
	// another.
	LogIdentity string
	// ShutdownTimeout bounds how long requests in flight may take to finish
	// once the context ends (10 s).
	ShutdownTimeout time.Duration
	// Cluster, when set, makes this server one node of several sharing a
	// PostgreSQL database: the read models, the projections' definitions,
	// the aggregates' snapshots and the rules' checkpoint live there, and
	// the projections' partitions are spread over the nodes by leases.
	Cluster *Cluster
}

// Cluster is what a node of a cluster needs.
type Cluster struct {
	// URL is the PostgreSQL database (the log's, normally).
	URL string
	// Schema holds the read models, leases, snapshots and checkpoints.
	Schema string
	// Node names this node among the others (default: host, pid, random).
	Node string
	// Partitions cuts each projection into this many shares (default 1).
	Partitions int
	// LeaseTTL is how long a dead node's work waits for another (10s).
	LeaseTTL time.Duration
	// Advertise is the URL other nodes reach this one at (the rules'
	// routes are forwarded to the rules leader). Default: the listener's
	// address, with the host name for an unspecified IP.
	Advertise string
}

// DefaultAddr is where the API listens unless told otherwise.
const DefaultAddr = config.DefaultAddr

// Serve runs the API until ctx ends, then stops taking requests, lets
// those in flight finish (appends included), ends live subscriptions and
// checkpoints the rules. ready, when set, is told the address once the
// listener is open.
func Serve(ctx context.Context, cfg Config, ready func(addr net.Addr)) (err error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if err := checkIdentity(cfg.DataDir, cfg.LogIdentity); err != nil {
		return err
	}
	ruleOpts := rules.Options{Dir: filepath.Join(cfg.DataDir, "rules")}
	var node *clusterNode
	if cfg.Cluster != nil {
		if node, err = openClusterNode(ctx, cfg); err != nil {
			return err
		}
		defer node.close()
		ruleOpts.Checkpoints = node.state.Checkpoint("rules")
	}
	auth, err := rules.Open(ctx, cfg.Store, ruleOpts)
	if err != nil {
		return fmt.Errorf("open the fraud rules: %w", err)
	}
	defer func() {
		// The checkpoint is a shortcut for the next start, not the truth.
		if cerr := auth.Close(context.WithoutCancel(ctx)); cerr != nil {
			log.Warn("rules checkpoint failed; the next start replays the log", "err", cerr)
		}
	}()
	// Snapshots only speed loads up: without them (another process holds
	// them) everything works by replaying.
	var snaps aggregate.SnapshotStore
	if node != nil {
		snaps = node.state
	} else if ps, err := aggregate.OpenSnapshots(filepath.Join(cfg.DataDir, "snapshots")); err == nil {
		defer ps.Close()
		snaps = ps
	}
	ex, err := examples.New(cfg.Store, snaps)
	if err != nil {
		return err
	}
	// The read models' catalog (a single server's) closes after the work
	// below has stopped.
	var cat *projection.Catalog
	if node == nil {
		if cat, err = projection.OpenCatalog(filepath.Join(cfg.DataDir, "readmodels")); err != nil {
			return fmt.Errorf("open the read models: %w", err)
		}
		defer cat.Close()
	}
	// Work beside the requests: the alerts stream kept up with the
	// decisions (what /v1/alerts follows), the projections and jobs, and
	// the demo's traffic. It stops before the rules, the catalog and the
	// log close.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
	}()
	sopts := server.Options{Store: cfg.Store, Rules: auth, Examples: ex, MaxBodyBytes: cfg.MaxBodyBytes, Logger: log, Tokens: cfg.Tokens}
	if node != nil {
		js, err := node.run(bg, &wg, cfg.Store, auth, cfg.Demo, log)
		if err != nil {
			return err
		}
		sopts.Shared, sopts.Jobs = node.reads, js
	} else {
		wg.Go(func() { deriveAlerts(bg, cfg.Store, log) })
		specs, err := readmodels.Specs(filepath.Join(cfg.DataDir, "projections"))
		if err != nil {
			return fmt.Errorf("the applied projections: %w", err)
		}
		ps := make([]projection.Projection, 0, len(specs))
		for _, name := range slices.Sorted(maps.Keys(specs)) {
			ps = append(ps, specs[name])
		}
		// As `strata projection run` does, rebuilding a changed definition in
		// the background; PUT /v1/projections/NAME adds more.
		sv, err := readmodels.Supervise(bg, cat, cfg.Store, ps, readmodels.RunOptions{Logger: log, SpecsDir: filepath.Join(cfg.DataDir, "projections")})
		if err != nil {
			return fmt.Errorf("run the projections: %w", err)
		}
		wg.Go(sv.Wait)
		if len(ps) > 0 {
			log.Info("running projections", "count", len(ps))
		}
		js, err := startJobs(bg, &wg, filepath.Join(cfg.DataDir, "jobs"), cfg.Store, log)
		if err != nil {
			return fmt.Errorf("the jobs: %w", err)
		}
		sopts.ReadModels, sopts.Projections, sopts.Jobs = cat, sv, js
	}
	if cfg.Demo {
		log.Info("demo: generating card transactions and orders")
		// On a cluster the transactions come from the rules leader.
		runDemo(bg, &wg, cfg.Store, auth, log, node == nil)
	}
	srv := server.New(sopts)
	var handler http.Handler = srv
	if node != nil {
		handler = node.rules.handler(srv)
	}
	var tlsCfg *tls.Config
	if cfg.TLS.Cert != "" {
		// Loaded before listening: a bad certificate fails the start, not
		// the first client.
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if len(cfg.Tokens) == 0 {
		log.Warn("NO API TOKENS ARE CONFIGURED: only loopback clients are served, and every one of them may read, append and change the rules; configure tokens (strata token new) to serve others", "addr", ln.Addr().String())
	}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	log.Info("serving", "addr", ln.Addr().String(), "scheme", scheme, "tokens", len(cfg.Tokens))
	if node != nil {
		if err := node.advertise(ctx, ln.Addr(), scheme); err != nil {
			ln.Close()
			return fmt.Errorf("cluster: advertise this node: %w", err)
		}
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	stopBG()
	srv.Close() // live subscriptions end; Shutdown waits for the rest
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// deriveAlerts keeps the alerts stream up with the log's decisions until
// ctx ends, starting again after a failure.
func deriveAlerts(ctx context.Context, st store.Store, log *slog.Logger) {
	for ctx.Err() == nil {
		err := alerts.Derive(ctx, st, alerts.DeriveOptions{Follow: true})
		if ctx.Err() != nil {
			return
		}
		log.Warn("alerts: deriving stopped; starting again in a second", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// checkIdentity records which log the data directory derives from, and
// refuses another: read models and checkpoints hold positions of one log.
func checkIdentity(dir, identity string) error {
	if identity == "" {
		return nil
	}
	path := filepath.Join(dir, "log-identity")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.Write(path, []byte(identity+"\n"))
	case err != nil:
		return err
	case strings.TrimSpace(string(b)) != identity:
		return fmt.Errorf("%s derives from the log %q, not %q: its read models and checkpoints hold that log's positions (use another data directory)", dir, strings.TrimSpace(string(b)), identity)
	}
	return nil
}

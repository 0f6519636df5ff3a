package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/rules"
)

// A cluster's fraud rules decide on one node at a time, the rules leader
// (the holder of the "rules" lease): the windows must see every
// transaction before the next decision about the same user, and each
// node's windows hold only what it decided (after the log it read at
// start). Every other node forwards the rules' routes to the leader. A
// node that becomes leader first reloads its windows from the log, so
// that they hold what the previous leader decided; a node that stops
// being leader first waits for the decisions it is making, so that the
// next leader's reload finds them.

// rulesLeader is this node's side of it.
type rulesLeader struct {
	node *clusterNode
	auth *rules.Authorizer
	log  *slog.Logger

	mu     sync.RWMutex // held for reading by each local decision, for writing to change leader
	leader bool
}

// forwardedHeader marks a forwarded request: a node that is not the leader
// either does not forward it again (no loops while the lease moves).
const forwardedHeader = "X-Strata-Forwarded-By"

// isRulesRoute reports the routes that must reach the leader.
func isRulesRoute(path string) bool {
	return path == "/v1/authorize" || path == "/v1/rules" || strings.HasPrefix(path, "/v1/rules/")
}

// lead is the "rules" lease's work: reload, lead until ctx ends, then let
// the decisions in flight finish.
func (rl *rulesLeader) lead(ctx context.Context, demo func(context.Context)) error {
	if err := rl.auth.Reload(ctx); err != nil {
		return fmt.Errorf("rules leader: reload: %w", err)
	}
	rl.mu.Lock()
	rl.leader = true
	rl.mu.Unlock()
	rl.log.Info("cluster: this node decides the fraud rules", "node", rl.node.cfg.Node)
	if demo != nil {
		go demo(ctx)
	}
	<-ctx.Done()
	rl.mu.Lock() // waits for the decisions in flight
	rl.leader = false
	rl.mu.Unlock()
	return ctx.Err()
}

// handler sends the rules' routes to the leader: here if this node leads,
// else through a reverse proxy to the leader's address.
func (rl *rulesLeader) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isRulesRoute(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		rl.mu.RLock()
		if rl.leader {
			defer rl.mu.RUnlock()
			next.ServeHTTP(w, r)
			return
		}
		rl.mu.RUnlock()
		target, err := rl.leaderURL(r.Context())
		if err != nil || target == nil || r.Header.Get(forwardedHeader) != "" {
			msg := "no node leads the fraud rules right now (one takes over within the lease's time to live)"
			if err != nil {
				msg += ": " + err.Error()
			}
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, api.NewError(api.CodeUnavailable, "%s", msg))
			return
		}
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.Out.Header.Set(forwardedHeader, rl.node.cfg.Node)
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				w.Header().Set("Retry-After", "1")
				writeAPIError(w, api.NewError(api.CodeUnavailable, "the rules leader at %s did not answer: %v", target, err))
			},
		}
		proxy.ServeHTTP(w, r)
	})
}

// leaderURL returns the address of the node that holds the rules lease,
// nil when none does.
func (rl *rulesLeader) leaderURL(ctx context.Context) (*url.URL, error) {
	var u string
	err := rl.node.db.QueryRowContext(ctx, `SELECT n.url FROM strata_leases l JOIN strata_node_urls n ON n.node = l.holder
WHERE l.name = 'rules' AND l.expires_at > clock_timestamp()`).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return url.Parse(u)
}

func writeAPIError(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

// advertise records where other nodes reach this one: the configured
// address, else the listener's (its host name when it listens on every
// interface).
func (n *clusterNode) advertise(ctx context.Context, addr net.Addr, scheme string) error {
	u := n.cfg.Advertise
	if u == "" {
		host, port, err := net.SplitHostPort(addr.String())
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			if host, err = os.Hostname(); err != nil {
				return err
			}
		}
		u = scheme + "://" + net.JoinHostPort(host, port)
	}
	if _, err := url.Parse(u); err != nil {
		return fmt.Errorf("advertise %q: %w", u, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := n.db.ExecContext(ctx, `INSERT INTO strata_node_urls (node, url) VALUES ($1, $2)
ON CONFLICT (node) DO UPDATE SET url = excluded.url, updated_at = clock_timestamp()`, n.cfg.Node, u)
	return err
}

const nodeURLsDDL = `CREATE TABLE IF NOT EXISTS strata_node_urls (
	node       TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)`

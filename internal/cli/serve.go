package cli

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	strata "github.com/stratadb/strata/internal/app"
	"github.com/stratadb/strata/internal/config"
	"github.com/stratadb/strata/pgstore"
	"github.com/stratadb/strata/store"
)

func newServeCmd(a *app) *cobra.Command {
	var (
		cfgPath, addr, tlsCert, tlsKey string
		postgres, pgSchema             string
		clusterSchema, node            string
		partitions                     int
		maxBody                        int64
		demo, cluster                  bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API on the log (127.0.0.1:7070)",
		Long: `Serve Strata's HTTP API on the embedded log in the data directory: appends,
reads, live subscriptions (Server-Sent Events), the fraud rules and
authorization, Prometheus metrics. The OpenAPI document is at /openapi.json;
docs/server.md walks through it with curl.

Options come from flags, else environment variables, else the configuration
file (--config, YAML; docs/server.md), else defaults. API tokens are
configured in the file only (strata token new makes one); without any, only
loopback clients are served.

SIGTERM or Ctrl-C stops it cleanly: no new requests, those in flight finish,
live subscriptions end, the rules' checkpoint is written and the log closed.`,
		Example: `  strata serve --demo
  strata serve --addr 127.0.0.1:8080 --data /var/lib/strata
  strata serve --config /etc/strata.yaml
  strata serve --postgres postgres://strata@db:5432/events
  strata serve --postgres postgres://strata@db:5432/events --cluster --node a
  curl -s localhost:7070/v1/head`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			getenv := func(k string) string {
				if a.env.Getenv == nil {
					return ""
				}
				return a.env.Getenv(k)
			}
			// pick is flag > environment > file > default.
			pick := func(flag, env, file, def string) string {
				switch {
				case cmd.Flags().Changed(flag):
					return cmd.Flags().Lookup(flag).Value.String()
				case getenv(env) != "":
					return getenv(env)
				case file != "":
					return file
				}
				return def
			}
			var c config.Config
			if p := pick("config", "STRATA_CONFIG", "", ""); p != "" {
				var err error
				if c, err = config.Load(p); err != nil {
					return err
				}
			}
			c.Addr = pick("addr", "STRATA_ADDR", c.Addr, config.DefaultAddr)
			c.TLS.Cert = pick("tls-cert", "STRATA_TLS_CERT", c.TLS.Cert, "")
			c.TLS.Key = pick("tls-key", "STRATA_TLS_KEY", c.TLS.Key, "")
			c.Postgres = pick("postgres", "STRATA_POSTGRES", c.Postgres, "")
			c.PostgresSchema = pick("postgres-schema", "STRATA_POSTGRES_SCHEMA", c.PostgresSchema, "public")
			c.ClusterSchema = pick("cluster-schema", "STRATA_CLUSTER_SCHEMA", c.ClusterSchema, c.PostgresSchema+"_cluster")
			c.Node = pick("node", "STRATA_NODE", c.Node, "")
			c.Advertise = pick("advertise", "STRATA_ADVERTISE", c.Advertise, "")
			fileParts := ""
			if c.Partitions > 0 {
				fileParts = strconv.Itoa(c.Partitions)
			}
			parts, err := strconv.Atoi(pick("partitions", "STRATA_PARTITIONS", fileParts, "1"))
			if err != nil {
				return usagef("partitions: want a number")
			}
			c.Partitions = parts
			fileTTL := ""
			if c.LeaseTTL > 0 {
				fileTTL = c.LeaseTTL.String()
			}
			ttl, err := time.ParseDuration(pick("lease-ttl", "STRATA_LEASE_TTL", fileTTL, "10s"))
			if err != nil {
				return usagef("lease ttl: want a duration such as 10s")
			}
			c.LeaseTTL = ttl
			switch {
			case cmd.Flags().Changed("cluster"):
				c.Cluster = cluster
			case getenv("STRATA_CLUSTER") != "":
				if c.Cluster, err = strconv.ParseBool(getenv("STRATA_CLUSTER")); err != nil {
					return usagef("STRATA_CLUSTER=%q: want true or false", getenv("STRATA_CLUSTER"))
				}
			}
			if !cmd.Flags().Changed("data") && getenv(dataEnv) == "" && c.Data != "" {
				a.dataDir = c.Data
			}
			c.Data = a.dataDir
			fileBody := ""
			if c.MaxBody > 0 {
				fileBody = strconv.FormatInt(c.MaxBody, 10)
			}
			mb, err := strconv.ParseInt(pick("max-body", "STRATA_MAX_BODY", fileBody, strconv.Itoa(config.DefaultMaxBody)), 10, 64)
			if err != nil || mb <= 0 {
				return usagef("max body: want a positive number of bytes")
			}
			c.MaxBody = mb
			switch {
			case cmd.Flags().Changed("demo"):
				c.Demo = demo
			case getenv("STRATA_DEMO") != "":
				c.Demo, err = strconv.ParseBool(getenv("STRATA_DEMO"))
				if err != nil {
					return usagef("STRATA_DEMO=%q: want true or false", getenv("STRATA_DEMO"))
				}
			}
			if err := c.Validate(); err != nil {
				return usagef("%v", err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			scheme := "http"
			if c.TLS.Cert != "" {
				scheme = "https"
			}
			identity := "embedded"
			if c.Postgres != "" {
				identity = "postgres " + redactURL(c.Postgres) + " schema " + c.PostgresSchema
			}
			var node *strata.Cluster
			if c.Cluster {
				node = &strata.Cluster{URL: c.Postgres, Schema: c.ClusterSchema, Node: c.Node, Partitions: c.Partitions, LeaseTTL: c.LeaseTTL, Advertise: c.Advertise}
				if node.Node == "" {
					host, _ := os.Hostname()
					node.Node = fmt.Sprintf("%s-%d", host, os.Getpid())
				}
			}
			serve := func(s store.Store) error {
				return strata.Serve(cmd.Context(), strata.Config{
					Store: s, DataDir: c.Data, Addr: c.Addr, MaxBodyBytes: c.MaxBody, Logger: log,
					Tokens: c.Tokens, TLS: c.TLS, Demo: c.Demo, LogIdentity: identity, Cluster: node,
				}, func(addr net.Addr) {
					where := "data " + c.Data
					if c.Postgres != "" {
						where = "log in PostgreSQL schema " + c.PostgresSchema + ", data " + c.Data
					}
					if node != nil {
						where += ", cluster node " + node.Node + " (schema " + node.Schema + ")"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "strata: serving %s://%s (%s)\n", scheme, addr, where)
				})
			}
			if c.Postgres == "" {
				return a.withStore(false, serve)
			}
			if err := os.MkdirAll(c.Data, 0o755); err != nil {
				return err
			}
			pg, err := pgstore.Open(cmd.Context(), c.Postgres, pgstore.Options{Schema: c.PostgresSchema, Logger: log})
			if err != nil {
				return fmt.Errorf("open the log in PostgreSQL: %w", err)
			}
			defer pg.Close()
			return serve(pg)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "configuration file, YAML (env STRATA_CONFIG)")
	f.StringVar(&addr, "addr", config.DefaultAddr, "address to listen on, HOST:PORT; port 0 picks a free one (env STRATA_ADDR)")
	f.Int64Var(&maxBody, "max-body", config.DefaultMaxBody, "the largest request body accepted, in bytes (env STRATA_MAX_BODY)")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate, PEM (env STRATA_TLS_CERT)")
	f.StringVar(&tlsKey, "tls-key", "", "the certificate's key, PEM (env STRATA_TLS_KEY)")
	f.StringVar(&postgres, "postgres", "", "keep the log in this PostgreSQL database instead of the data directory: postgres://USER@HOST:PORT/DB (env STRATA_POSTGRES)")
	f.StringVar(&pgSchema, "postgres-schema", "public", "the schema the log's tables go in (env STRATA_POSTGRES_SCHEMA)")
	f.BoolVar(&cluster, "cluster", false, "be one node of several on the PostgreSQL log: read models, snapshots and the rules' checkpoint in PostgreSQL, projections shared among the nodes (env STRATA_CLUSTER)")
	f.StringVar(&clusterSchema, "cluster-schema", "", "the schema the nodes share beside the log's (default: the log's schema + _cluster; env STRATA_CLUSTER_SCHEMA)")
	f.String("advertise", "", "the URL the other nodes reach this one at (default: the listen address; env STRATA_ADVERTISE)")
	f.StringVar(&node, "node", "", "this node's name among the others (default: host and process id; env STRATA_NODE)")
	f.Duration("lease-ttl", 10*time.Second, "how long a dead node's share of the work waits before another node takes it over (env STRATA_LEASE_TTL)")
	f.IntVar(&partitions, "partitions", 1, "cut each projection into this many shares that move between nodes; more than 1 needs rows updated commutatively across keys (env STRATA_PARTITIONS)")
	f.BoolVar(&demo, "demo", false, "also generate card transactions and orders, a few a second, so there is live data to see (env STRATA_DEMO)")
	return cmd
}

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Short:   "Make API tokens for strata serve's configuration file",
		Example: `  strata token new --name ingest --scope append --stream orders-`,
	}
	var (
		name    string
		scopes  []string
		streams []string
	)
	newCmd := &cobra.Command{
		Use:   "new --name NAME --scope read|append|admin",
		Short: "Print a fresh API token and the lines of the configuration file that grant it",
		Long: `Print a fresh random API token (give it to the client: Authorization: Bearer
SECRET) and the YAML entry for strata serve's configuration file, which holds
only the token's SHA-256.`,
		Example: `  strata token new --name ingest --scope append --stream orders- --stream txn-
  strata token new --name ops --scope admin`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			t := config.Token{Name: name, Streams: streams}
			for _, s := range scopes {
				t.Scopes = append(t.Scopes, config.Scope(s))
			}
			secret, hash := config.NewSecret()
			t.SHA256 = hash
			c := config.Config{Tokens: []config.Token{t}}
			if err := c.Validate(); err != nil {
				return usagef("%v", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "# the token (shown once; give it to the client): %s\n", secret)
			fmt.Fprintf(w, "tokens:\n  - name: %s\n    sha256: %s\n    scopes: [%s]\n", name, hash, strings.Join(scopes, ", "))
			if len(streams) > 0 {
				fmt.Fprintf(w, "    streams: [%s]\n", strings.Join(quoteAll(streams), ", "))
			}
			return nil
		}),
	}
	newCmd.Flags().StringVar(&name, "name", "", "the token's name, as logs and errors show it (required)")
	newCmd.Flags().StringArrayVar(&scopes, "scope", nil, "read, append or admin (repeatable; admin implies the others)")
	newCmd.Flags().StringArrayVar(&streams, "stream", nil, "restrict the token to streams starting with this prefix (repeatable)")
	_ = newCmd.MarkFlagRequired("name")
	cmd.AddCommand(newCmd)
	return cmd
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// redactURL drops a URL's password: the identity file is not a secret.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

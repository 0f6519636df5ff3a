package cli

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	strata "github.com/stratadb/strata/internal/app"
	"github.com/stratadb/strata/store"
)

const addrEnv = "STRATA_ADDR"

func newServeCmd(a *app) *cobra.Command {
	var (
		addr    string
		maxBody int64
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API on the log (127.0.0.1:7070)",
		Long: `Serve Strata's HTTP API on the embedded log in the data directory: appends,
reads, live subscriptions (Server-Sent Events), the fraud rules and
authorization. The OpenAPI document is at /openapi.json; docs/server.md
walks through it with curl.

It listens on loopback unless told otherwise (--addr or ` + addrEnv + `): nothing
authenticates requests yet. SIGTERM or Ctrl-C stops it cleanly: no new
requests, those in flight finish, live subscriptions end, the rules'
checkpoint is written and the log closed.`,
		Example: `  strata serve
  strata serve --addr 127.0.0.1:8080 --data /var/lib/strata
  curl -s localhost:7070/v1/head`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("addr") && a.env.Getenv != nil {
				if v := a.env.Getenv(addrEnv); v != "" {
					addr = v
				}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return a.withStore(false, func(s store.Store) error {
				return strata.Serve(cmd.Context(), strata.Config{
					Store: s, DataDir: a.dataDir, Addr: addr, MaxBodyBytes: maxBody, Logger: log,
				}, func(addr net.Addr) {
					fmt.Fprintf(cmd.OutOrStdout(), "strata: serving http://%s (data %s)\n", addr, a.dataDir)
				})
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", strata.DefaultAddr, "address to listen on, HOST:PORT (port 0: any free one) (env "+addrEnv+")")
	f.Int64Var(&maxBody, "max-body", 8<<20, "the largest request body accepted, in bytes")
	return cmd
}

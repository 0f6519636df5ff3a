// Package cli holds the commands of the strata binary: append, read, tail,
// stats, verify and bench, each in its own file.
//
// Commands reach the log only through Env, so tests can run the whole
// command line (flags, input parsing, output, exit codes) against an
// in-memory store; only Execute names the real eventlog.
//
// Exit codes: 0 success, 1 the command failed (including a corrupt log),
// 2 the command line was wrong. Errors go to stderr as "strata: <message>".
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/client"
	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

// Exit codes returned by Execute.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

const (
	dataEnv        = "STRATA_DATA"
	defaultDataDir = "./strata-data"
)

// Env is everything the commands take from outside the process. Tests
// replace Open and Verify with fakes and Getenv with a map.
type Env struct {
	Getenv func(key string) string
	Open   func(dir string, opts eventlog.Options) (store.Store, error)
	// Follow opens a log that another process has open, read-only. nil:
	// reading commands fail when the log is in use.
	Follow func(dir string) (store.Store, error)
	Verify func(ctx context.Context, dir string) (eventlog.VerifyReport, error)
}

// DefaultEnv is the real environment: the process's variables and the
// embedded log.
func DefaultEnv() Env {
	return Env{
		Getenv: os.Getenv,
		Open: func(dir string, opts eventlog.Options) (store.Store, error) {
			l, err := eventlog.Open(dir, opts)
			if err != nil {
				// Return a nil interface, not a typed nil *Log.
				return nil, err
			}
			return l, nil
		},
		Follow: func(dir string) (store.Store, error) {
			f, err := eventlog.OpenFollower(dir)
			if err != nil {
				return nil, err
			}
			return f, nil
		},
		Verify: eventlog.Verify,
	}
}

// app carries the global flags, resolved once before any command runs.
type app struct {
	env        Env
	dataFlag   string
	durFlag    string
	dataDir    string
	durability eventlog.Durability
	// server, when set (--server, STRATA_SERVER), is the Strata server the
	// commands talk to instead of a local data directory; token is sent
	// with every request.
	server, token string
}

// Execute runs the strata command line with os.Args and returns the exit
// code for main to pass to os.Exit.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default handlers so a second
		// Ctrl-C kills a command that is slow to notice cancellation.
		<-ctx.Done()
		stop()
	}()
	return Run(ctx, DefaultEnv(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Run executes one command line and reports its error on stderr. It turns a
// panic into an error message so users never see a Go stack trace; set
// STRATA_DEBUG=1 to get the trace back.
func Run(ctx context.Context, env Env, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	root := NewRootCommand(env)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	defer func() {
		if v := recover(); v != nil {
			if env.Getenv != nil && env.Getenv("STRATA_DEBUG") != "" {
				panic(v)
			}
			fmt.Fprintf(stderr, "strata: internal error: %v\n", v)
			code = ExitFailure
		}
	}()
	cmd, err := root.ExecuteContextC(ctx)
	return report(stderr, cmd, err)
}

// report prints err the way every command does and picks the exit code.
func report(stderr io.Writer, cmd *cobra.Command, err error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "strata: %v\n", err)
	code := exitCode(err)
	if code == ExitUsage && cmd != nil {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// usageError marks a wrong command line: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// runError marks an error returned by a command's own code. Errors without
// either mark come from cobra's parsing (unknown command or flag, wrong
// number of arguments, conflicting flags), which are usage errors.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ue *usageError
	var re *runError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &re):
		return ExitFailure
	}
	return ExitUsage
}

// runE adapts a command body so that its errors count as failures (exit 1)
// unless it marked them as usage errors itself.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ue *usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return &runError{err}
	}
}

// NewRootCommand builds the strata command tree over env.
func NewRootCommand(env Env) *cobra.Command {
	a := &app{env: env}
	root := &cobra.Command{
		Use:   "strata",
		Short: "Strata is an event store: an append-only log of named streams",
		Long: `Strata is an event store: an append-only log of named streams.

The log lives in a directory chosen with --data, or STRATA_DATA when the flag
is not given, or ./strata-data when neither is.`,
		Example: `  strata append orders-42 --file events.jsonl
  strata read orders-42
  STRATA_DATA=/var/lib/strata strata tail --from-end`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return a.resolve(cmd) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.dataFlag, "data", defaultDataDir, "log directory (env "+dataEnv+")")
	pf.StringVar(&a.durFlag, "durability", "always", "when appends are acknowledged: always (fsync), interval or none")
	pf.StringVar(&a.server, "server", "", "run against this Strata server (http://HOST:PORT) instead of a local data directory (env "+serverEnv+")")
	pf.StringVar(&a.token, "token", "", "the API token to send to --server (env "+tokenEnv+")")
	root.AddCommand(
		newAppendCmd(a),
		newReadCmd(a),
		newTailCmd(a),
		local(newStatsCmd(a)),
		local(newVerifyCmd(a)),
		local(newBenchCmd(a)),
		newBankCmd(a),
		newOrdersCmd(a),
		newStateCmd(a),
		newHistoryCmd(a),
		local(newSnapshotCmd(a)),
		local(newProjectionCmd(a)),
		local(newQueryCmd(a)),
		newGenCmd(a),
		newWindowCmd(a),
		newAuthorizeCmd(a),
		newRulesCmd(a),
		newAlertsCmd(a),
		local(newServeCmd(a)),
		newTokenCmd(a),
	)
	return root
}

// resolve applies the precedence flag > environment > default for --data
// and parses --durability.
func (a *app) resolve(cmd *cobra.Command) error {
	a.dataDir = a.dataFlag
	if !cmd.Flags().Changed("data") && a.env.Getenv != nil {
		if v := a.env.Getenv(dataEnv); v != "" {
			a.dataDir = v
		}
	}
	if a.dataDir == "" {
		return usagef("--data must not be empty")
	}
	d, err := eventlog.ParseDurability(a.durFlag)
	if err != nil {
		return &usageError{err}
	}
	a.durability = d
	if a.env.Getenv != nil {
		if !cmd.Flags().Changed("server") {
			a.server = a.env.Getenv(serverEnv)
		}
		if !cmd.Flags().Changed("token") {
			a.token = a.env.Getenv(tokenEnv)
		}
	}
	if a.server != "" {
		for c := cmd; c != nil; c = c.Parent() {
			if c.Annotations[localOnly] != "" {
				return usagef("strata %s works on a local data directory, not with --server", c.Name())
			}
		}
	}
	return nil
}

const (
	serverEnv = "STRATA_SERVER"
	tokenEnv  = "STRATA_TOKEN"
	// localOnly annotates the commands that need the data directory
	// itself (its files, its read models), which --server cannot give.
	localOnly = "local-only"
)

// withClient runs fn with a client of --server.
func (a *app) withClient(fn func(*client.Client) error) error {
	c, err := client.New(a.server, client.Options{Token: a.token})
	if err != nil {
		return &usageError{err}
	}
	defer c.Close()
	return fn(c)
}

// local marks cmd as one that needs the data directory.
func local(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[localOnly] = "yes"
	return cmd
}

// withStore opens the log in the data directory, runs fn and closes the log,
// reporting a failed close too: with relaxed durability, Close is where the
// last appends reach the disk. Commands that only read pass mustExist so a
// mistyped --data reports an error instead of creating an empty log, and so
// that they follow a log another process has open (eventlog.Follower).
func (a *app) withStore(mustExist bool, fn func(store.Store) error) (err error) {
	return a.withStoreOpen(mustExist, false, fn)
}

// withFollower is withStore for commands that run for long and only read
// (tail): they always follow the log's files, never lock it, so that a
// writer can open the log while they run.
func (a *app) withFollower(fn func(store.Store) error) error {
	return a.withStoreOpen(true, a.env.Follow != nil, fn)
}

func (a *app) withStoreOpen(mustExist, follow bool, fn func(store.Store) error) (err error) {
	if a.server != "" {
		return a.withClient(func(c *client.Client) error { return fn(c) })
	}
	if mustExist {
		if _, err := os.Stat(a.dataDir); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no log at %s (set --data or %s)", a.dataDir, dataEnv)
		}
	}
	var s store.Store
	if follow {
		s, err = a.env.Follow(a.dataDir)
	} else {
		s, err = a.env.Open(a.dataDir, eventlog.Options{Durability: a.durability})
	}
	if errors.Is(err, eventlog.ErrLocked) && mustExist && a.env.Follow != nil {
		// Another process (a writer) has the log open: commands that only
		// read follow it instead, without the lock.
		s, err = a.env.Follow(a.dataDir)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", a.dataDir, err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", a.dataDir, cerr)
		}
	}()
	return fn(s)
}

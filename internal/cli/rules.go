package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/stratadb/strata/api"
	"github.com/stratadb/strata/client"
	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/rules/alerts"
	"github.com/stratadb/strata/rules/txngen"
	"github.com/stratadb/strata/store"
)

func newAuthorizeCmd(a *app) *cobra.Command {
	var (
		txn            rules.Transaction
		amount, at, id string
		output         string
		attrs          []string
	)
	cmd := &cobra.Command{
		Use:   "authorize --user U --amount A",
		Short: "Decide about a transaction with the fraud rules, and record it with the decision",
		Long: `Decide about one transaction with every rule in force (strata rules list),
over the windows of the transactions recorded before it, the candidate
counted in. The transaction and the decision are appended to the log in one
durable append (stream txn-USER); a denied transaction does not count toward
later decisions unless a rule says so. State lives in the log, so it carries
over from one invocation to the next.

Exit status 0 whatever the decision; the decision is the output.`,
		Example: `  strata authorize --user u1 --amount 12.50
  strata authorize --user u1 --amount 4999 --at 2026-11-28T12:00:00Z -o json
  strata authorize --user u1 --amount 20 --merchant m42 --attr channel=web`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			var err error
			if txn.Amount, err = num.Parse(amount); err != nil {
				return usagef("--amount %q: %v", amount, err)
			}
			if at != "" {
				if txn.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return usagef("--at %q: want RFC 3339 (2026-11-28T12:00:00Z)", at)
				}
			}
			if id != "" {
				if err := txn.ID.UnmarshalText([]byte(id)); err != nil {
					return usagef("--id %q: %v", id, err)
				}
			}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--attr %q: want NAME=VALUE", kv)
				}
				if txn.Attrs == nil {
					txn.Attrs = map[string]string{}
				}
				txn.Attrs[k] = v
			}
			if a.server != "" {
				return a.withClient(func(c *client.Client) error {
					wd, err := c.Authorize(cmd.Context(), txn)
					if err != nil {
						return err
					}
					d, err := wd.ToDecision()
					if err != nil {
						return err
					}
					return printDecision(cmd.OutOrStdout(), output, d)
				})
			}
			return a.withStore(false, func(s store.Store) error {
				auth, err := openAuthorizer(cmd.Context(), a, s)
				if err != nil {
					return err
				}
				d, err := auth.Authorize(cmd.Context(), txn)
				if err != nil {
					return err
				}
				if err := auth.Close(cmd.Context()); err != nil {
					return err
				}
				return printDecision(cmd.OutOrStdout(), output, d)
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&txn.User, "user", "", "the user (required)")
	f.StringVar(&amount, "amount", "", "the amount, an exact decimal (required)")
	f.StringVar(&at, "at", "", "the transaction's time, RFC 3339 (default now)")
	f.StringVar(&id, "id", "", "the transaction's id (a UUID): a retry with the same id gets the recorded decision")
	f.StringVar(&txn.Merchant, "merchant", "", "the merchant")
	f.StringVar(&txn.Country, "country", "", "the country")
	f.StringVar(&txn.Currency, "currency", "", "the currency")
	f.StringArrayVar(&attrs, "attr", nil, "an attribute NAME=VALUE (repeatable), read by rules as attrs.NAME")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("amount")
	addOutputFlag(cmd, &output, formatTable)
	return cmd
}

// decisionJSON is authorize's JSON output.
type decisionJSON struct {
	rules.Decision
	Position uint64 `json:"position"`
	Repeated bool   `json:"repeated,omitempty"`
}

func printDecision(w io.Writer, format string, d rules.Decision) error {
	if format == formatJSON {
		return writeJSON(w, decisionJSON{d, d.Position, d.Repeated})
	}
	rows := [][2]string{
		{"decision", string(d.Outcome)},
		{"transaction", d.Transaction.String()},
		{"user", d.User},
		{"at", d.At.Format(time.RFC3339Nano)},
		{"position", fmt.Sprint(d.Position)},
	}
	if d.Repeated {
		rows = append(rows, [2]string{"repeated", "yes: decided before, nothing recorded"})
	}
	for _, f := range d.Fired {
		var vs []string
		for _, v := range f.Values {
			vs = append(vs, v.Name+" = "+v.Value.String())
		}
		rows = append(rows, [2]string{"fired", fmt.Sprintf("%s v%d (%s, %s): %s", f.Rule, f.Version, f.Action, f.Severity, strings.Join(vs, ", "))})
	}
	return writeKV(w, rows)
}

func newRulesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List and change the fraud rules (changes are events in the rules stream)",
		Long: `The fraud rules authorize decides with. Until the log records a change,
the default set is in force: velocity (more than 10 transactions of a user in
any 60 s) and spend (more than $5,000 in any 5 minutes), both denying.

Every change is an event in the stream "rules" (who, when, what), and takes
effect with windows rebuilt from the recorded transactions, so a new rule is
right from its first decision. A rule file is YAML or JSON; see docs/rules.md.`,
		Example: `  strata rules list
  strata rules apply --file my-rules.yaml --by alice
  strata rules disable velocity
  strata rules rm spend`,
	}
	by := ""
	if u, err := user.Current(); err == nil {
		by = u.Username
	}
	var file, output string
	apply := &cobra.Command{
		Use:   "apply --file FILE",
		Short: "Add rules, or replace the rules of the same names (a new version each)",
		Example: `  strata rules apply --file my-rules.yaml --by alice
  cat my-rules.json | strata rules apply`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if file != "" && file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return &usageError{err}
				}
				defer f.Close()
				r = f
			}
			raw, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			spec, err := rules.Parse(bytes.NewReader(raw))
			if err != nil {
				return &usageError{err}
			}
			if a.server != "" {
				return a.withClient(func(c *client.Client) error {
					rs, err := c.ApplyRules(cmd.Context(), by, raw)
					if err != nil {
						return err
					}
					return printRules(cmd.OutOrStdout(), formatTable, rs)
				})
			}
			return withAuthorizer(a, cmd, func(auth *rules.Authorizer) error {
				if err := auth.Apply(cmd.Context(), by, spec.Rules...); err != nil {
					return err
				}
				// On stderr: stdout stays the rule list, for scripts.
				bf := auth.LastBackfill()
				fmt.Fprintf(cmd.ErrOrStderr(), "backfilled %d new window groups: %d transactions after position %d, in %v (decisions held %v)\n",
					bf.Windows, bf.Transactions, bf.After, bf.Took.Round(time.Millisecond), bf.Held.Round(time.Millisecond))
				return listRules(cmd.OutOrStdout(), formatTable, auth)
			})
		}),
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "the rule file (YAML or JSON; - or none for stdin)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the rules, with their versions",
		Example: `  strata rules list
  strata rules list -o json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			if a.server != "" {
				return a.withClient(func(c *client.Client) error {
					rs, err := c.Rules(cmd.Context())
					if err != nil {
						return err
					}
					return printRules(cmd.OutOrStdout(), output, rs)
				})
			}
			return withAuthorizer(a, cmd, func(auth *rules.Authorizer) error { return listRules(cmd.OutOrStdout(), output, auth) })
		}),
	}
	addOutputFlag(list, &output, formatTable)
	change := func(use, short string, do func(*rules.Authorizer, *cobra.Command, string) error) *cobra.Command {
		return &cobra.Command{
			Use:     use + " NAME",
			Short:   short,
			Example: "  strata rules " + use + " velocity --by alice",
			Args:    cobra.ExactArgs(1),
			RunE: runE(func(cmd *cobra.Command, args []string) error {
				if a.server != "" {
					return a.withClient(func(c *client.Client) error {
						rs, err := c.ChangeRule(cmd.Context(), by, use, args[0])
						if err != nil {
							return err
						}
						return printRules(cmd.OutOrStdout(), formatTable, rs)
					})
				}
				return withAuthorizer(a, cmd, func(auth *rules.Authorizer) error {
					if err := do(auth, cmd, args[0]); err != nil {
						return err
					}
					return listRules(cmd.OutOrStdout(), formatTable, auth)
				})
			}),
		}
	}
	cmd.AddCommand(apply, list,
		change("disable", "Turn a rule off (kept, as a new version)", func(auth *rules.Authorizer, cmd *cobra.Command, name string) error {
			return auth.Disable(cmd.Context(), by, name)
		}),
		change("enable", "Turn a disabled rule on again", func(auth *rules.Authorizer, cmd *cobra.Command, name string) error {
			return auth.Enable(cmd.Context(), by, name)
		}),
		change("rm", "Remove a rule", func(auth *rules.Authorizer, cmd *cobra.Command, name string) error {
			return auth.Remove(cmd.Context(), by, name)
		}))
	cmd.PersistentFlags().StringVar(&by, "by", by, "who makes the change, recorded with it")
	return cmd
}

func withAuthorizer(a *app, cmd *cobra.Command, fn func(*rules.Authorizer) error) error {
	return a.withStore(false, func(s store.Store) error {
		auth, err := openAuthorizer(cmd.Context(), a, s)
		if err != nil {
			return err
		}
		if err := fn(auth); err != nil {
			return err
		}
		return auth.Close(cmd.Context())
	})
}

// openAuthorizer opens the rules' authorizer over the log, with its
// checkpoints in DATA/rules (so that a command replays only what was
// recorded since the last one).
func openAuthorizer(ctx context.Context, a *app, s store.Store) (*rules.Authorizer, error) {
	return rules.Open(ctx, s, rules.Options{Dir: filepath.Join(a.dataDir, "rules")})
}

func listRules(w io.Writer, format string, auth *rules.Authorizer) error {
	rs, versions := auth.AllRules()
	out := make([]api.Rule, len(rs))
	for i := range rs {
		out[i] = api.FromRule(&rs[i], versions[rs[i].Name])
	}
	return printRules(w, format, out)
}

// printRules prints the rule set, local or a server's, the same way.
func printRules(w io.Writer, format string, rs []api.Rule) error {
	if format == formatJSON {
		return writeJSON(w, rs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tACTION\tSEVERITY\tKEY\tCONDITION")
	for _, r := range rs {
		state := "enabled"
		if r.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Version, state, r.Action, r.Severity, r.Key, r.Condition)
	}
	return tw.Flush()
}

func newAlertsCmd(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Raise the alerts the recorded decisions call for, and print them",
		Long: `Every denied or reviewed transaction, every alert rule that fired and every
amendment raises an alert: an alert.raised event in the stream "alerts",
derived from the decisions in the log (running this again raises each one
once). Prints the alerts raised now as JSON lines; --follow keeps raising
them as decisions are recorded. Read the whole stream with
'strata read alerts'.`,
		Example: `  strata alerts
  strata alerts --follow
  strata alerts deliver --webhook https://example.com/hooks/fraud --name ops`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			return a.withStore(false, func(s store.Store) error {
				err := alerts.Derive(cmd.Context(), s, alerts.DeriveOptions{Follow: follow, Raised: func(al alerts.Alert) { writeJSON(out, al) }})
				if follow && errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVar(&follow, "follow", false, "keep raising alerts as decisions are recorded, until interrupted")
	var webhook, natsURL, subject, name string
	var dfollow bool
	deliver := &cobra.Command{
		Use:   "deliver (--webhook URL | --nats URL --subject S) --name NAME",
		Short: "Deliver the alerts to a webhook or a NATS subject, at least once",
		Long: `Send the alerts after the delivery's checkpoint (the stream
alerts-delivered-NAME) in order, each with an idempotency key (the
Idempotency-Key header; Nats-Msg-Id on NATS), retrying with backoff until
the receiver takes it. A webhook answering 4xx (other than 408 or 429) stops
the delivery there, with nothing skipped. Alerts are raised first, as
'strata alerts' does.`,
		Example: `  strata alerts deliver --webhook https://example.com/hooks/fraud --name ops
  strata alerts deliver --nats nats://127.0.0.1:4222 --subject strata.alerts --name bus --follow`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var sink alerts.Sink
			switch {
			case webhook != "" && natsURL == "":
				sink = &alerts.Webhook{URL: webhook}
			case natsURL != "" && webhook == "" && subject != "":
				nc, err := nats.Connect(natsURL)
				if err != nil {
					return fmt.Errorf("nats %s: %w", natsURL, err)
				}
				defer nc.Close()
				sink = &alerts.NATS{Conn: nc, Subject: subject}
			default:
				return usagef("want --webhook URL, or --nats URL with --subject")
			}
			if name == "" {
				return usagef("--name is required: it names the delivery's checkpoint")
			}
			out := cmd.OutOrStdout()
			return a.withStore(false, func(s store.Store) error {
				if err := alerts.Derive(cmd.Context(), s, alerts.DeriveOptions{}); err != nil {
					return err
				}
				n := 0
				err := alerts.Deliver(cmd.Context(), s, sink, alerts.DeliverOptions{Name: name, Follow: dfollow, Delivered: func(alerts.Alert) { n++ }})
				if dfollow && errors.Is(err, context.Canceled) {
					err = nil
				}
				fmt.Fprintf(out, "delivered %d alerts\n", n)
				return err
			})
		}),
	}
	df := deliver.Flags()
	df.StringVar(&webhook, "webhook", "", "POST each alert as JSON to this URL")
	df.StringVar(&natsURL, "nats", "", "publish each alert to a NATS server at this URL")
	df.StringVar(&subject, "subject", "strata.alerts", "the NATS subject")
	df.StringVar(&name, "name", "", "the delivery's name (its checkpoint)")
	df.BoolVar(&dfollow, "follow", false, "keep delivering new alerts until interrupted (raise them with 'strata alerts --follow')")
	cmd.AddCommand(deliver)
	return cmd
}

func newGenTransactionsCmd(a *app) *cobra.Command {
	var (
		opts             txngen.Options
		out, truth, outp string
	)
	cmd := &cobra.Command{
		Use:   "transactions",
		Short: "Generate card traffic with planted fraud, authorize it, and score the detection",
		Long: `Generate transactions in event-time order: ordinary users (user-0 …), who
stay inside the reference rules (at most 8 transactions in any 60 s and $3,000
in any 5 minutes), and --fraud-ratio of the users (fraud-0 …) with one planted
episode each: a burst of 11 or more transactions within a minute (fraud-0's
is the reference burst, 11 between 55 s and 65 s), or more than $5,000 in a
few large purchases within 5 minutes.

Each transaction is authorized into the log (as 'strata authorize' does) and
the decisions are scored against what was planted: episodes caught (a
transaction denied or sent to review) and ordinary transactions flagged. The
ground truth goes to --truth as JSON lines. With --out, the transactions are
written there as JSON lines instead, and nothing is authorized.`,
		Example: `  strata --durability none gen transactions --users 1000 --rate 100 --fraud-ratio 0.02
  strata gen transactions --users 50 --rate 5 --duration 5m --out txns.jsonl --truth truth.jsonl`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(outp); err != nil {
				return err
			}
			ctx := cmd.Context()
			var sink func(rules.Transaction) bool
			var fail error
			counts := map[rules.Action]int{}
			var sc *txngen.Scorer
			var decisions []rules.Decision
			run := func(s store.Store) error {
				var w io.Writer
				if out != "" {
					f, err := os.Create(out)
					if err != nil {
						return err
					}
					defer f.Close()
					w = f
					sink = func(t rules.Transaction) bool {
						if err := writeJSON(w, t); err != nil {
							fail = err
							return false
						}
						return true
					}
				} else {
					auth, err := openAuthorizer(ctx, a, s)
					if err != nil {
						return err
					}
					defer auth.Close(ctx)
					sink = func(t rules.Transaction) bool {
						d, err := auth.Authorize(ctx, t)
						if err != nil {
							fail = err
							return false
						}
						counts[d.Outcome]++
						decisions = append(decisions, rules.Decision{Transaction: d.Transaction, Outcome: d.Outcome})
						return true
					}
				}
				episodes, err := txngen.Generate(opts, sink)
				if err != nil {
					return &usageError{err}
				}
				if fail != nil {
					return fail
				}
				if truth != "" {
					f, err := os.Create(truth)
					if err != nil {
						return err
					}
					for _, ep := range episodes {
						if err := writeJSON(f, ep); err != nil {
							f.Close()
							return err
						}
					}
					if err := f.Close(); err != nil {
						return err
					}
				}
				sc = txngen.NewScorer(episodes)
				for _, d := range decisions {
					sc.Add(d)
				}
				return nil
			}
			var err error
			if out != "" {
				err = run(nil)
			} else {
				err = a.withStore(false, run)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" {
				fmt.Fprintf(w, "wrote %s (%d episodes planted)\n", out, sc.Score().Episodes)
				return nil
			}
			s := sc.Score()
			if outp == formatJSON {
				return writeJSON(w, map[string]any{"approve": counts[rules.Approve], "review": counts[rules.Review], "deny": counts[rules.Deny],
					"episodes": s.Episodes, "caught": s.Caught, "ordinary": s.Ordinary, "flagged": s.Flagged, "recall": s.Recall()})
			}
			return writeKV(w, [][2]string{
				{"transactions", fmt.Sprint(counts[rules.Approve] + counts[rules.Review] + counts[rules.Deny])},
				{"approved / review / denied", fmt.Sprintf("%d / %d / %d", counts[rules.Approve], counts[rules.Review], counts[rules.Deny])},
				{"planted episodes caught", fmt.Sprintf("%d of %d (recall %.4f)", s.Caught, s.Episodes, s.Recall())},
				{"ordinary transactions flagged", fmt.Sprintf("%d of %d", s.Flagged, s.Ordinary)},
			})
		}),
	}
	f := cmd.Flags()
	f.IntVar(&opts.Users, "users", 1000, "users, ordinary and fraudulent")
	f.Float64Var(&opts.Rate, "rate", 100, "transactions per second of event time, on average")
	f.Float64Var(&opts.FraudRatio, "fraud-ratio", 0.01, "the share of users with a planted fraud episode")
	f.DurationVar(&opts.Duration, "duration", 10*time.Minute, "event time covered")
	f.Uint64Var(&opts.Seed, "seed", 1, "the same seed gives the same traffic")
	f.StringVar(&out, "out", "", "write the transactions here as JSON lines instead of authorizing them")
	f.StringVar(&truth, "truth", "", "write the planted episodes here as JSON lines")
	addOutputFlag(cmd, &outp, formatTable)
	return cmd
}

package cli

import (
	"fmt"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/stratadb/strata/examples"
	"github.com/stratadb/strata/examples/bank"
)

type bankResultJSON struct {
	Account  string `json:"account"`
	Balance  string `json:"balance"`
	Version  uint64 `json:"version"`
	Position uint64 `json:"position,omitempty"`
}

func newBankCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bank",
		Short: "The bank account example: open, deposit, withdraw, balance",
		Long: `The bank account example. An account's balance is never stored: it is the
sum of its events (stream account-ID), in exact decimal money. Withdrawals
that would overdraw the account are refused.`,
		Example: `  strata bank open acct-1
  strata bank deposit acct-1 500
  strata bank withdraw acct-1 200
  strata bank balance acct-1`,
	}
	var owner, initial string
	open := &cobra.Command{
		Use:     "open ACCOUNT",
		Short:   "Open an account",
		Example: "  strata bank open acct-1 --owner ada --initial 0",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			amount, err := parseAmount(initial)
			if err != nil {
				return err
			}
			return a.bankCommand(cmd, args[0], bank.Open{Owner: owner, Initial: amount})
		}),
	}
	open.Flags().StringVar(&owner, "owner", "", "the account holder")
	open.Flags().StringVar(&initial, "initial", "0", "the opening balance")
	money := func(use, short string, mk func(decimal.Decimal) bank.Command) *cobra.Command {
		return &cobra.Command{
			Use:     use + " ACCOUNT AMOUNT",
			Short:   short,
			Example: "  strata bank " + use + " acct-1 947.53",
			Args:    cobra.ExactArgs(2),
			RunE: runE(func(cmd *cobra.Command, args []string) error {
				amount, err := parseAmount(args[1])
				if err != nil {
					return err
				}
				return a.bankCommand(cmd, args[0], mk(amount))
			}),
		}
	}
	balance := &cobra.Command{
		Use:     "balance ACCOUNT",
		Short:   "Print an account's balance (the fold of its events)",
		Example: "  strata bank balance acct-1",
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withCatalog(true, func(c *examples.Catalog) error {
				acct, v, err := c.Bank.Load(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if v == 0 {
					return fmt.Errorf("account %s: %w", args[0], bank.ErrNotOpen)
				}
				return writeJSON(cmd.OutOrStdout(), bankResultJSON{Account: args[0], Balance: acct.Balance.StringFixed(2), Version: v})
			})
		}),
	}
	cmd.AddCommand(open,
		money("deposit", "Deposit money", func(d decimal.Decimal) bank.Command { return bank.Deposit{Amount: d} }),
		money("withdraw", "Withdraw money (refused if it would overdraw)", func(d decimal.Decimal) bank.Command { return bank.Withdraw{Amount: d} }),
		balance)
	return cmd
}

func parseAmount(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, usagef("amount %q is not a decimal number", s)
	}
	return d, nil
}

func (a *app) bankCommand(cmd *cobra.Command, account string, c bank.Command) error {
	return a.withCatalog(false, func(cat *examples.Catalog) error {
		res, err := cat.Bank.Handle(cmd.Context(), account, c)
		if err != nil {
			return err
		}
		acct, _, err := cat.Bank.Load(cmd.Context(), account)
		if err != nil {
			return err
		}
		return writeJSON(cmd.OutOrStdout(), bankResultJSON{Account: account, Balance: acct.Balance.StringFixed(2), Version: res.Version, Position: res.Position})
	})
}

package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/stratadb/strata/eventlog"
	"github.com/stratadb/strata/store"
)

func TestDataDirPrecedence(t *testing.T) {
	flagDir, envDir := t.TempDir(), t.TempDir()
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"default", "", nil, defaultDataDir},
		{"env", envDir, nil, envDir},
		{"flag", "", []string{"--data", flagDir}, flagDir},
		{"flag beats env", envDir, []string{"--data", flagDir}, flagDir},
		{"flag after command", envDir, []string{"append", "s", "--data=" + flagDir}, flagDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEnv()
			if tt.env != "" {
				f.env[dataEnv] = tt.env
			}
			args := tt.args
			if len(args) == 0 || args[0] != "append" {
				args = append([]string{"append", "s"}, args...)
			}
			r := f.run(t, `{"type":"a"}`, args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if len(f.opened) != 1 || f.opened[0] != tt.want {
				t.Errorf("opened %q, want %q", f.opened, tt.want)
			}
		})
	}
}

func TestDurabilityFlag(t *testing.T) {
	for arg, want := range map[string]eventlog.Durability{
		"":         eventlog.SyncAlways,
		"always":   eventlog.SyncAlways,
		"interval": eventlog.SyncInterval,
		"none":     eventlog.SyncNone,
	} {
		f := newFakeEnv()
		args := []string{"append", "s", "--data", t.TempDir()}
		if arg != "" {
			args = append(args, "--durability", arg)
		}
		if r := f.run(t, `{"type":"a"}`, args...); r.code != ExitOK {
			t.Fatalf("%q: exit %d: %s", arg, r.code, r.stderr)
		}
		if got := f.opts[0].Durability; got != want {
			t.Errorf("--durability %q opened with %v, want %v", arg, got, want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"help", "", []string{"--help"}, ExitOK, ""},
		{"no command prints help", "", nil, ExitOK, ""},
		{"unknown command", "", []string{"frobnicate"}, ExitUsage, `strata: unknown command "frobnicate"`},
		{"unknown flag", "", []string{"read", "--nope"}, ExitUsage, "strata: unknown flag: --nope"},
		{"bad flag value", "", []string{"read", "--limit", "x"}, ExitUsage, `strata: invalid argument "x"`},
		{"negative limit", "", []string{"read", "--data", dir, "--limit", "-1"}, ExitUsage, "--limit -1"},
		{"missing stream", "", []string{"append"}, ExitUsage, "strata: want one STREAM argument, got 0"},
		{"bad stream name", "", []string{"append", "a\tb"}, ExitUsage, "invalid stream"},
		{"bad expect", "", []string{"append", "s", "--expect", "maybe"}, ExitUsage, `expected version "maybe"`},
		{"bad output", "", []string{"stats", "-o", "yaml"}, ExitUsage, `output format "yaml"`},
		{"bad durability", "", []string{"--durability", "often", "stats"}, ExitUsage, `durability "often"`},
		{"flag for the other kind of read", "", []string{"read", "--data", dir, "--backwards"}, ExitUsage, "--backwards applies only when reading a STREAM"},
		{"exclusive flags", "", []string{"tail", "--after", "3", "--from-end"}, ExitUsage, "strata: if any flags in the group"},
		{"bad input", "{", []string{"append", "s", "--data", dir}, ExitFailure, "strata: stdin: invalid JSON"},
		{"missing file", "", []string{"append", "s", "--file", dir + "/none.json"}, ExitFailure, "no such file"},
		{"no log", "", []string{"read", "--data", dir + "/missing"}, ExitFailure, "strata: no log at " + dir + "/missing"},
		{"wrong expected version", `{"type":"a"}`, []string{"append", "s", "--data", dir, "--expect", "5"}, ExitFailure, "wrong expected version"},
		{"stream not found", "", []string{"read", "nobody", "--data", dir}, ExitFailure, `strata: read stream "nobody": store: stream not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newFakeEnv().run(t, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q\nwant it to contain %q", r.stderr, tt.stderr)
			}
			if tt.code == ExitUsage && !strings.Contains(r.stderr, "--help' for usage") {
				t.Errorf("usage error without a pointer to --help: %q", r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("stack trace on stderr: %q", r.stderr)
			}
		})
	}
}

func TestExitCodeClassification(t *testing.T) {
	base := errors.New("boom")
	if got := exitCode(&runError{&usageError{base}}); got != ExitUsage {
		t.Errorf("usage inside run error: %d", got)
	}
	if got := exitCode(&runError{base}); got != ExitFailure {
		t.Errorf("run error: %d", got)
	}
	if got := exitCode(base); got != ExitUsage {
		t.Errorf("unmarked (cobra) error: %d", got)
	}
	if got := exitCode(nil); got != ExitOK {
		t.Errorf("nil: %d", got)
	}
}

func TestPanicBecomesMessage(t *testing.T) {
	f := newFakeEnv()
	env := f.Env()
	env.Open = func(string, eventlog.Options) (store.Store, error) { panic("kaboom") }
	var out, errOut strings.Builder
	code := Run(context.Background(), env, []string{"append", "s", "--data", t.TempDir()}, strings.NewReader(`{"type":"a"}`), &out, &errOut)
	if code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	if got := errOut.String(); got != "strata: internal error: kaboom\n" {
		t.Errorf("stderr %q", got)
	}
}

func TestEveryCommandHasExampleAndShort(t *testing.T) {
	root := NewRootCommand(newFakeEnv().Env())
	root.InitDefaultCompletionCmd()
	for _, c := range allCommands(root) {
		if c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			continue
		}
		if c.Short == "" {
			t.Errorf("%s has no Short", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	all := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		all = append(all, allCommands(sub)...)
	}
	return all
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stratadb/strata/eventlog"
)

func TestStats(t *testing.T) {
	f := newFakeEnv()
	dir := t.TempDir()
	seed(t, f, dir)

	r := f.run(t, "", "stats", "--data", dir)
	want := "head      5\nstreams   2\nsegments  1\nbytes     4.0 KiB (4096)\nindexed   5\n"
	if r.code != ExitOK || r.stdout != want {
		t.Errorf("exit %d, stdout\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}

	r = f.run(t, "", "stats", "--data", dir, "-o", "json")
	if want := `{"head":5,"streams":2,"segments":1,"bytes":4096,"indexed":5}` + "\n"; r.stdout != want {
		t.Errorf("json %q, want %q", r.stdout, want)
	}
}

func TestStatsShowsIndexLag(t *testing.T) {
	var b strings.Builder
	printStats(&b, formatTable, eventlog.Stats{Head: 100, Indexed: 90})
	if !strings.Contains(b.String(), "indexed   90 (10 behind head, catching up)") {
		t.Errorf("got\n%s", b.String())
	}
}

func TestVerify(t *testing.T) {
	rep := eventlog.VerifyReport{Segments: 2, Records: 1000, Bytes: 2048, Head: 1000}
	tests := []struct {
		name   string
		err    error
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{
			name:   "ok table",
			code:   ExitOK,
			stdout: "dir       DIR\nstatus    ok\nsegments  2\nrecords   1000\nbytes     2.0 KiB (2048)\nhead      1000\n",
		},
		{
			name:   "ok json",
			args:   []string{"-o", "json"},
			code:   ExitOK,
			stdout: `{"dir":"DIR","ok":true,"segments":2,"records":1000,"bytes":2048,"head":1000,"torn_tail":false}` + "\n",
		},
		{
			name: "corrupt table",
			err:  fmt.Errorf("scan: %w", &eventlog.CorruptionError{Segment: "00000000000000000001.seg", Offset: 4711, Reason: "crc mismatch"}),
			code: ExitFailure,
			stdout: "dir       DIR\nstatus    CORRUPT\nsegments  2\nrecords   1000\nbytes     2.0 KiB (2048)\nhead      1000\n" +
				"segment   00000000000000000001.seg\noffset    4711\nreason    crc mismatch\n",
			stderr: "strata: verify DIR: scan: eventlog: corrupt record in segment 00000000000000000001.seg at offset 4711: crc mismatch\n",
		},
		{
			name:   "corrupt json at offset 0",
			err:    &eventlog.CorruptionError{Segment: "s", Offset: 0, Reason: "bad header"},
			args:   []string{"-o", "json"},
			code:   ExitFailure,
			stdout: `{"dir":"DIR","ok":false,"segments":2,"records":1000,"bytes":2048,"head":1000,"torn_tail":false,"segment":"s","offset":0,"reason":"bad header"}` + "\n",
		},
		{
			name:   "other error",
			err:    context.DeadlineExceeded,
			code:   ExitFailure,
			stderr: "strata: verify DIR: context deadline exceeded\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEnv()
			dir := t.TempDir()
			f.verify = func(ctx context.Context, d string) (eventlog.VerifyReport, error) { return rep, tt.err }
			r := f.run(t, "", append([]string{"verify", "--data", dir}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			if want := strings.ReplaceAll(tt.stdout, "DIR", dir); r.stdout != want {
				t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
			}
			if want := strings.ReplaceAll(tt.stderr, "DIR", dir); tt.stderr != "" && r.stderr != want {
				t.Errorf("stderr %q\nwant   %q", r.stderr, want)
			}
			if len(f.opened) != 0 {
				t.Error("verify opened the log")
			}
			if json.Valid([]byte(r.stdout)) != (strings.Contains(strings.Join(tt.args, " "), "json") && r.stdout != "") {
				t.Errorf("json output validity unexpected: %q", r.stdout)
			}
		})
	}
}

func TestVerifyTornTail(t *testing.T) {
	var b strings.Builder
	printVerify(&b, formatTable, "d", eventlog.VerifyReport{TornTail: true}, nil)
	if !strings.Contains(b.String(), "status    ok (torn tail") {
		t.Errorf("got\n%s", b.String())
	}
}

func TestVerifyMissingDir(t *testing.T) {
	f := newFakeEnv()
	r := f.run(t, "", "verify", "--data", t.TempDir()+"/nope")
	if r.code != ExitFailure || !strings.Contains(r.stderr, "no log at") || len(f.verified) != 0 {
		t.Errorf("exit %d, stderr %q, verified %v", r.code, r.stderr, f.verified)
	}
}

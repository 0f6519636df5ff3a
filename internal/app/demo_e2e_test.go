package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratadb/strata/num"
	"github.com/stratadb/strata/rules"
	"github.com/stratadb/strata/store"
)

// strata serve --demo: decisions and orders appear in the log by
// themselves, live.
func TestE2EDemo(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0", "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for rec, err := range newClient(t, s).Subscribe(ctx, store.SubscribeOptions{}) {
		if err != nil {
			t.Fatalf("after %v: %v", seen, err)
		}
		seen[rec.Type] = true
		if seen["transaction.decided"] && seen["order.created"] {
			break
		}
	}
	s.stop(t)
}

// The alerts of denied transactions follow over SSE.
func TestE2EAlerts(t *testing.T) {
	s := start(t, t.TempDir(), "127.0.0.1:0")
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := c.Authorize(ctx, mustTxn("u9", "6000"))
	if err != nil || d.Outcome != "deny" {
		t.Fatalf("%+v, %v", d, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/alerts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var a struct {
			Transaction string `json:"transaction_id"`
			Outcome     string `json:"outcome"`
		}
		if err := json.Unmarshal([]byte(data), &a); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if a.Transaction != d.Transaction || a.Outcome != "deny" {
			t.Fatalf("alert %s, want the denial of %s", data, d.Transaction)
		}
		s.stop(t)
		return
	}
	t.Fatalf("no alert: %v", sc.Err())
}

func mustTxn(user, amount string) rules.Transaction {
	a, err := num.Parse(amount)
	if err != nil {
		panic(err)
	}
	return rules.Transaction{User: user, Amount: a}
}

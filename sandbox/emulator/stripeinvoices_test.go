package emulator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// startStripeMock runs ./bin/stripe-mock (built by `make tools`) on ports the
// system chooses and returns its URL; the test is skipped without it.
func startStripeMock(t *testing.T) string {
	t.Helper()
	const bin = "../../bin/stripe-mock"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no stripe-mock at %s (run `make tools`): %v", bin, err)
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			if a, ok := strings.CutPrefix(lines.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not say where it listens within 30s")
		return ""
	}
}

// stripeSandbox is a sandbox passing to upstream: its Stripe client, its
// Stripe port and its main port.
func stripeSandbox(t *testing.T, upstream string, plan Plan) (*billing.Client, string, string) {
	t.Helper()
	s, sandbox := newSandbox(t, plan)
	s.SetStripeURL(upstream)
	stripePort := httptest.NewServer(s.StripeHandler())
	t.Cleanup(stripePort.Close)
	return billing.New(stripePort.URL, "sk_test_123", rest.HTTPClient(10*time.Second, 0)), stripePort.URL, sandbox.URL
}

// stripeCall sends a form to the Stripe port and returns the status and body.
func stripeCall(t *testing.T, method, url, form, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(form))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk_test_123")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return doRequest(t, req)
}

func sandboxInvoice(t *testing.T, sandbox, id string) stripeInvoiceView {
	t.Helper()
	var v stripeInvoiceView
	getJSON(t, sandbox+"/_sandbox/stripe/invoices/"+id, &v)
	return v
}

func sandboxDelete(t *testing.T, url string, status int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	require.NoError(t, err)
	code, body := doRequest(t, req)
	require.Equal(t, status, code, body)
	return body
}

func doRequest(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func restError(t *testing.T, err error) *rest.Error {
	t.Helper()
	var re *rest.Error
	require.True(t, errors.As(err, &re), "a *rest.Error: %v", err)
	return re
}

func TestStripeInvoicesAreRememberedOverStripeMock(t *testing.T) {
	t.Parallel()
	c, stripeURL, sandbox := stripeSandbox(t, startStripeMock(t), Plan{"stripe.invoices.void": {Rate5xx: 1, AfterEffect: 1}})
	ctx := context.Background()
	due := time.Now().AddDate(0, 0, 30)
	newInvoice := func(ourID string) billing.NewInvoice {
		return billing.NewInvoice{CustomerID: "cus_1", OurID: ourID, Currency: "eur", DueDate: due}
	}
	lines := func(inv billing.Invoice, keyPrefix string) {
		t.Helper()
		for i, l := range []struct{ q, unit int64 }{{3, 15000}, {1, 4200}} {
			_, err := c.AddItem(ctx, billing.NewItem{CustomerID: "cus_1", InvoiceID: inv.ID, Currency: "eur", Description: "line",
				Quantity: l.q, UnitAmount: l.unit, LineNo: i + 1}, fmt.Sprintf("%s/line/%d", keyPrefix, i+1))
			require.NoError(t, err)
		}
	}

	first, err := c.CreateInvoice(ctx, newInvoice("INV-1"), "wf-1/invoice")
	require.NoError(t, err)
	second, err := c.CreateInvoice(ctx, newInvoice("INV-2"), "wf-2/invoice")
	require.NoError(t, err)

	t.Run("two creates get distinct IDs; one key gives one invoice", func(t *testing.T) {
		require.True(t, strings.HasPrefix(first.ID, "in_"), first.ID)
		require.NotEqual(t, first.ID, second.ID)
		require.Equal(t, "draft", first.Status)
		again, err := c.CreateInvoice(ctx, newInvoice("INV-1"), "wf-1/invoice")
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID, "the same key and parameters replay the first answer")
		_, err = c.CreateInvoice(ctx, newInvoice("INV-other"), "wf-1/invoice")
		re := restError(t, err)
		require.Equal(t, http.StatusBadRequest, re.StatusCode)
		require.True(t, re.Idempotency, "the key with other parameters is Stripe's idempotency_error: %v", err)

		var log struct{ Requests []Entry }
		getJSON(t, sandbox+"/_sandbox/requests?endpoint=stripe.invoices.create", &log)
		require.Len(t, log.Requests, 4)
		require.True(t, log.Requests[0].Effect)
		require.False(t, log.Requests[2].Effect, "a replay changes nothing")
		v := sandboxInvoice(t, sandbox, first.ID)
		require.Equal(t, map[string]string{billing.MetadataInvoiceID: "INV-1"}, v.Metadata)
		require.Equal(t, "cus_1", v.Customer)
		require.Equal(t, "eur", v.Currency)
		require.Equal(t, due.Unix(), v.DueDate.Unix())
		require.False(t, v.Created.IsZero())
	})

	t.Run("lines sum to the total", func(t *testing.T) {
		lines(first, "wf-1")
		lines(first, "wf-1") // retried under the same keys: added once
		got, err := c.GetInvoice(ctx, first.ID)
		require.NoError(t, err)
		require.Equal(t, []any{first.ID, "draft", int64(3*15000 + 4200), int64(49200), "eur", "INV-1"},
			[]any{got.ID, got.Status, got.Total, got.AmountDue, got.Currency, got.OurID})
		present, err := c.InvoiceLines(ctx, first.ID)
		require.NoError(t, err)
		require.ElementsMatch(t, []int{1, 2}, present)
		v := sandboxInvoice(t, sandbox, first.ID)
		require.Len(t, v.Lines, 2)
		require.Equal(t, int64(45000), v.Lines[0].Amount)
		require.Equal(t, int64(49200), v.AmountDue)
		none, err := c.InvoiceLines(ctx, second.ID)
		require.NoError(t, err)
		require.Empty(t, none)
	})

	t.Run("finalize opens it and later reads say open", func(t *testing.T) {
		fin, err := c.Finalize(ctx, first.ID, "wf-1/finalize")
		require.NoError(t, err)
		require.Equal(t, "open", fin.Status)
		got, err := c.GetInvoice(ctx, first.ID)
		require.NoError(t, err)
		require.Equal(t, "open", got.Status)
		require.False(t, sandboxInvoice(t, sandbox, first.ID).FinalizedAt.IsZero())

		again, err := c.Finalize(ctx, first.ID, "wf-1/finalize")
		require.NoError(t, err, "a retry under the same key replays")
		require.Equal(t, "open", again.Status)
		_, err = c.Finalize(ctx, first.ID, "another/finalize")
		require.Equal(t, http.StatusBadRequest, restError(t, err).StatusCode, "Stripe finalizes a draft only")
		_, err = c.AddItem(ctx, billing.NewItem{CustomerID: "cus_1", InvoiceID: first.ID, Currency: "eur", Quantity: 1, UnitAmount: 1, LineNo: 3}, "wf-1/line/3")
		re := restError(t, err)
		require.Equal(t, "invoice", re.Param, "items go on drafts only: %v", err)
		require.Equal(t, int64(49200), sandboxInvoice(t, sandbox, first.ID).Total)
	})

	t.Run("a person marks it paid", func(t *testing.T) {
		at := time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)
		v := postJSON(t, sandbox+"/_sandbox/stripe/invoices/"+first.ID, `{"status": "paid", "at": "`+at.Format(time.RFC3339)+`"}`, http.StatusOK)
		require.Equal(t, "paid", v["status"])
		got, err := c.GetInvoice(ctx, first.ID)
		require.NoError(t, err)
		require.Equal(t, "paid", got.Status)
		code, body := stripeCall(t, http.MethodGet, stripeURL+"/v1/invoices/"+first.ID, "", "")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, fmt.Sprintf(`"paid_at":%d`, at.Unix()))
		require.Contains(t, body, `"amount_paid":49200`)
		require.Contains(t, body, `"amount_remaining":0`)
		require.Equal(t, at, sandboxInvoice(t, sandbox, first.ID).PaidAt)
	})

	t.Run("search by metadata finds it", func(t *testing.T) {
		found, ok, err := c.FindInvoice(ctx, "INV-1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, []any{first.ID, "paid", int64(49200), int64(49200)}, []any{found.ID, found.Status, found.Total, found.AmountPaid})
		require.Equal(t, time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC), found.StatusAt, "Stripe's status_transitions.paid_at")
		_, ok, err = c.FindInvoice(ctx, "INV-none")
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("bad person input is refused and changes nothing", func(t *testing.T) {
		url := sandbox + "/_sandbox/stripe/invoices/" + second.ID
		before := sandboxInvoice(t, sandbox, second.ID)
		for body, want := range map[string]string{
			`{"status": "refunded"}`:                      `status \"refunded\" is not one of open, paid, void, uncollectible`,
			`{"status": "draft"}`:                         `status \"draft\" is not one of`,
			`{"status": "paid", "at": "yesterday"}`:       `at \"yesterday\" is not an RFC3339 time`,
			`{"status": "paid", "total": -5}`:             "total -5 is negative",
			`{"total": 10, "at": "2026-11-27T10:00:00Z"}`: `\"at\" is when the status changed`,
			`{"status": "paid", "paidAt": 1}`:             `unknown field \"paidAt\"`,
			`{}`:                                          "nothing to change",
			`not json`:                                    "invalid character",
		} {
			out := postJSON(t, url, body, http.StatusBadRequest)
			require.Contains(t, fmt.Sprint(out["error"]), strings.ReplaceAll(want, `\"`, `"`), body)
		}
		out := postJSON(t, url, `{"status": "void", "total": 7}`, http.StatusConflict)
		require.Contains(t, out["error"], "You cannot void invoice "+second.ID+": it is draft, and only open or uncollectible invoices can be voided.")
		require.Equal(t, before, sandboxInvoice(t, sandbox, second.ID), "a refused change changes nothing, total included")
		out = postJSON(t, sandbox+"/_sandbox/stripe/invoices/in_never", `{"status": "paid"}`, http.StatusNotFound)
		require.Contains(t, out["error"], "the sandbox has no Stripe invoice in_never")
	})

	t.Run("pay, void and mark_uncollectible through the API", func(t *testing.T) {
		inv, err := c.CreateInvoice(ctx, newInvoice("INV-3"), "wf-3/invoice")
		require.NoError(t, err)
		lines(inv, "wf-3")
		_, err = c.Finalize(ctx, inv.ID, "wf-3/finalize")
		require.NoError(t, err)
		code, body := stripeCall(t, http.MethodPost, stripeURL+"/v1/invoices/"+inv.ID+"/mark_uncollectible", "", "wf-3/uncollectible")
		require.Equal(t, http.StatusOK, code, body)
		require.Contains(t, body, `"status":"uncollectible"`)
		code, body = stripeCall(t, http.MethodPost, stripeURL+"/v1/invoices/"+inv.ID+"/void", "", "wf-3/void")
		require.GreaterOrEqual(t, code, 500, "the fault plan answers 5xx after the void took effect: %s", body)
		require.Equal(t, "void", sandboxInvoice(t, sandbox, inv.ID).Status)
		code, body = stripeCall(t, http.MethodPost, stripeURL+"/v1/invoices/"+inv.ID+"/pay", "paid_out_of_band=true", "wf-3/pay")
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "it is void")
		_, ok, err := c.FindInvoice(ctx, "INV-3")
		require.NoError(t, err)
		require.False(t, ok, "signalbox's search skips void invoices")

		payable, err := c.CreateInvoice(ctx, newInvoice("INV-4"), "wf-4/invoice")
		require.NoError(t, err)
		lines(payable, "wf-4")
		code, body = stripeCall(t, http.MethodPost, stripeURL+"/v1/invoices/"+payable.ID+"/pay", "paid_out_of_band=true", "wf-4/pay")
		require.Equal(t, http.StatusOK, code, body)
		v := sandboxInvoice(t, sandbox, payable.ID)
		require.Equal(t, "paid", v.Status)
		require.Equal(t, v.FinalizedAt, v.PaidAt, "paying a draft finalizes it first")
		require.Equal(t, int64(49200), v.AmountPaid)
	})

	t.Run("a deleted invoice is gone", func(t *testing.T) {
		sandboxDelete(t, sandbox+"/_sandbox/stripe/invoices/"+second.ID, http.StatusOK)
		_, err := c.GetInvoice(ctx, second.ID)
		re := restError(t, err)
		require.Equal(t, http.StatusNotFound, re.StatusCode)
		require.Equal(t, "invalid_request_error/resource_missing", re.Code)
		require.Equal(t, "No such invoice: '"+second.ID+"'", re.Message)
		_, ok, err := c.FindInvoice(ctx, "INV-2")
		require.NoError(t, err)
		require.False(t, ok)
		require.True(t, sandboxInvoice(t, sandbox, second.ID).Deleted)
		require.Contains(t, sandboxDelete(t, sandbox+"/_sandbox/stripe/invoices/"+second.ID, http.StatusNotFound), "was deleted at")
		postJSON(t, sandbox+"/_sandbox/stripe/invoices/"+second.ID, `{"status": "open"}`, http.StatusNotFound)
		sandboxDelete(t, sandbox+"/_sandbox/stripe/invoices/in_never", http.StatusNotFound)

		draft, err := c.CreateInvoice(ctx, newInvoice("INV-5"), "wf-5/invoice")
		require.NoError(t, err)
		code, body := stripeCall(t, http.MethodDelete, stripeURL+"/v1/invoices/"+first.ID, "", "")
		require.Equal(t, http.StatusBadRequest, code, "Stripe's API deletes drafts only: %s", body)
		code, body = stripeCall(t, http.MethodDelete, stripeURL+"/v1/invoices/"+draft.ID, "", "")
		require.Equal(t, http.StatusOK, code, body)
		_, err = c.GetInvoice(ctx, draft.ID)
		require.Equal(t, http.StatusNotFound, restError(t, err).StatusCode)
	})

	t.Run("an invoice the sandbox never saw passes through", func(t *testing.T) {
		got, err := c.GetInvoice(ctx, "in_never")
		require.NoError(t, err)
		require.Equal(t, "in_never", got.ID, "stripe-mock answers for any ID")
	})

	var all struct{ Invoices []stripeInvoiceView }
	getJSON(t, sandbox+"/_sandbox/stripe/invoices", &all)
	require.Len(t, all.Invoices, 5)
}

// TestStripeInvoicesGetIDsOfTheirOwn runs against an upstream that, like
// some stripe-mocks, answers every create with one ID, and creates invoices
// concurrently.
func TestStripeInvoicesGetIDsOfTheirOwn(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		id := "in_fixture"
		if strings.HasPrefix(r.URL.Path, "/v1/invoiceitems") {
			id = "ii_fixture"
		}
		_, _ = fmt.Fprintf(w, `{"id":%q,"object":"invoice","status":"draft","data":[]}`, id)
	}))
	defer upstream.Close()
	c, stripeURL, sandbox := stripeSandbox(t, upstream.URL, nil)
	ctx := context.Background()
	const n = 20
	ids, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			inv, err := c.CreateInvoice(ctx, billing.NewInvoice{CustomerID: "cus_1", OurID: fmt.Sprint("INV-", i%10), Currency: "eur",
				DueDate: time.Unix(4102444800, 0)}, fmt.Sprint("key-", i%10))
			ids[i], errs[i] = inv.ID, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			require.Equal(t, http.StatusConflict, restError(t, err).StatusCode, "only a key whose first request is under way is refused: %v", err)
		}
	}
	distinct := map[string]bool{}
	for i, id := range ids {
		if id != "" {
			distinct[id] = true
			if twin := ids[(i+10)%n]; twin != "" {
				require.Equal(t, twin, id, "one key, one invoice")
			}
		}
	}
	require.Len(t, distinct, 10, "ten keys, ten invoices: %v", ids)
	require.Contains(t, distinct, "in_fixture")
	require.Contains(t, distinct, "in_sbx_1")

	for _, key := range []string{"a", "b"} {
		_, err := c.AddItem(ctx, billing.NewItem{CustomerID: "cus_1", InvoiceID: "in_sbx_1", Currency: "eur", Quantity: 2, UnitAmount: 250}, key)
		require.NoError(t, err)
	}
	v := sandboxInvoice(t, sandbox, "in_sbx_1")
	require.Equal(t, int64(1000), v.Total)
	require.Equal(t, "ii_fixture", v.Lines[0].ID)
	require.NotEqual(t, v.Lines[0].ID, v.Lines[1].ID)
	code, body := stripeCall(t, http.MethodGet, stripeURL+"/v1/invoices/in_sbx_1", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"id":"in_sbx_1"`)
	require.Contains(t, body, `"total":1000`)
}

func TestInvoiceSearchQueries(t *testing.T) {
	t.Parallel()
	inv := &stripeInvoice{ID: "in_1", Customer: "cus_1", Currency: "eur", Status: "open", Total: 4200,
		Metadata: map[string]string{"signalbox_invoice_id": "INV-'1'", "k": "v"}}
	for query, want := range map[string]bool{
		`metadata['signalbox_invoice_id']:'INV-\'1\''`:     true,
		`metadata["signalbox_invoice_id"]:"INV-'1'"`:       true,
		`metadata['signalbox_invoice_id']:'INV-1'`:         false,
		`metadata['k']:'v' AND status:'open'`:              true,
		`metadata['k']:'v' AND status:'paid'`:              false,
		`status:'paid' OR customer:'cus_1'`:                true,
		`status:'paid' OR total:4201`:                      false,
		`total:4200 AND currency:'EUR'`:                    true,
		`  metadata['missing']:'' OR metadata['k']:'v'   `: true,
	} {
		q, ok := parseInvoiceQuery(query)
		require.True(t, ok, query)
		require.Equal(t, want, q.matches(inv), query)
	}
	for _, query := range []string{``, `created>1`, `-status:'open'`, `status:'open' AND customer:'c' OR total:1`, `metadata[k]:'v'`,
		`metadata['k':'v'`, `status:'open`, `status:open'`, `number:'1'`, `status:'open' and total:1`} {
		_, ok := parseInvoiceQuery(query)
		require.False(t, ok, "not understood, passed through: %s", query)
	}
}

func TestResetForgetsStripeInvoices(t *testing.T) {
	var p stripeInvoices
	p.remember(&stripeInvoice{}, "in_1")
	p.reset()
	require.Empty(t, p.invoices)
	p.remember(&stripeInvoice{}, "in_1")
	require.Contains(t, p.invoices, "in_1", "the ID is free again")
}

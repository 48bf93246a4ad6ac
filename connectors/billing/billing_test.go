package billing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// stripeLike answers like Stripe and records what it was sent.
func stripeLike(t *testing.T, status int, header map[string]string, body string) (*Client, *[]*http.Request, *[]url.Values) {
	t.Helper()
	var reqs []*http.Request
	var forms []url.Values
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		reqs, forms = append(reqs, r), append(forms, form)
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return New(ts.URL, "sk_test_x", rest.HTTPClient(2*time.Second, 0)), &reqs, &forms
}

func TestCreateInvoiceSendsTheIdempotencyKeyAndParameters(t *testing.T) {
	t.Parallel()
	c, reqs, forms := stripeLike(t, 200, nil, `{"id":"in_1","object":"invoice","status":"draft","total":4700}`)
	due := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	inv, err := c.CreateInvoice(context.Background(), NewInvoice{CustomerID: "cus_1", OurID: "INV-1", Currency: "eur", DueDate: due}, "wf/invoice")
	require.NoError(t, err)
	require.Equal(t, Invoice{ID: "in_1", Status: "draft", Total: 4700}, inv)
	r, f := (*reqs)[0], (*forms)[0]
	require.Equal(t, "/v1/invoices", r.URL.Path)
	require.Equal(t, "wf/invoice", r.Header.Get("Idempotency-Key"))
	require.Equal(t, "cus_1", f.Get("customer"))
	require.Equal(t, "send_invoice", f.Get("collection_method"))
	require.Equal(t, "exclude", f.Get("pending_invoice_items_behavior"))
	require.Equal(t, "1798675200", f.Get("due_date"))
	require.Equal(t, "INV-1", f.Get("metadata[signalbox_invoice_id]"))
}

func TestAddItemSendsExactMinorUnits(t *testing.T) {
	t.Parallel()
	c, reqs, forms := stripeLike(t, 200, nil, `{"id":"ii_1","object":"invoiceitem"}`)
	id, err := c.AddItem(context.Background(), NewItem{CustomerID: "cus_1", InvoiceID: "in_1", Currency: "eur", Description: "Consulting",
		Quantity: 3, UnitAmount: 99_999_999, LineNo: 2}, "wf/line/2")
	require.NoError(t, err)
	require.Equal(t, "ii_1", id)
	require.Equal(t, "wf/line/2", (*reqs)[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "99999999", (*forms)[0].Get("unit_amount_decimal"))
	require.Equal(t, "3", (*forms)[0].Get("quantity"))
	require.Equal(t, "in_1", (*forms)[0].Get("invoice"))
}

func TestFindCustomerMatchesOurMetadataOnly(t *testing.T) {
	t.Parallel()
	c, reqs, _ := stripeLike(t, 200, nil, `{"object":"search_result","data":[
		{"id":"cus_other","object":"customer","metadata":{}},
		{"id":"cus_ours","object":"customer","email":"ap@acme.example","metadata":{"signalbox_customer_id":"C-1"}}],"has_more":false}`)
	cu, found, err := c.FindCustomer(context.Background(), "C-1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, Customer{ID: "cus_ours", Email: "ap@acme.example"}, cu)
	require.Equal(t, "metadata['signalbox_customer_id']:'C-1'", (*reqs)[0].URL.Query().Get("query"))

	_, found, err = c.FindCustomer(context.Background(), "C-2")
	require.NoError(t, err)
	require.False(t, found, "a search hit without our ID in its metadata is not ours")
}

func TestStripeErrorsBecomeRestErrors(t *testing.T) {
	t.Parallel()
	c, _, _ := stripeLike(t, 400, nil, `{"error":{"type":"invalid_request_error","code":"parameter_invalid_integer","message":"Invalid due_date","param":"due_date"}}`)
	_, err := c.CreateInvoice(context.Background(), NewInvoice{CustomerID: "cus_1", Currency: "eur", DueDate: time.Now()}, "k")
	var e *rest.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, rest.Error{Target: "billing", Op: "POST /v1/invoices", StatusCode: 400, Code: "invalid_request_error/parameter_invalid_integer",
		Message: "Invalid due_date", Param: "due_date"}, *e)

	c, _, _ = stripeLike(t, 429, map[string]string{"Retry-After": "3"}, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
	_, err = c.Finalize(context.Background(), "in_1", "k")
	require.ErrorAs(t, err, &e)
	require.Equal(t, 429, e.StatusCode)
	require.True(t, e.HasRetryAfter)
	require.Equal(t, 3*time.Second, e.RetryAfter)

	c, _, _ = stripeLike(t, 409, nil, `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key"}}`)
	_, err = c.Finalize(context.Background(), "in_1", "k")
	require.ErrorAs(t, err, &e)
	require.Equal(t, 409, e.StatusCode)
	require.Equal(t, "idempotency_error/idempotency_key_in_use", e.Code)
	require.True(t, e.Idempotency, "an idempotency_error is marked for classification")

	_, err = New("http://127.0.0.1:1", "sk_test_x", rest.HTTPClient(time.Second, 0)).GetInvoice(context.Background(), "in_1")
	require.ErrorAs(t, err, &e)
	require.Zero(t, e.StatusCode, "no answer at all")
	require.True(t, errors.Is(err, e.Err))
}

func TestFindInvoiceAndInvoiceLinesReadOurMetadata(t *testing.T) {
	t.Parallel()
	c, reqs, _ := stripeLike(t, 200, nil, `{"object":"search_result","data":[
		{"id":"in_void","object":"invoice","status":"void","metadata":{"signalbox_invoice_id":"INV-1"}},
		{"id":"in_ours","object":"invoice","status":"open","metadata":{"signalbox_invoice_id":"INV-1"}}],"has_more":false}`)
	inv, found, err := c.FindInvoice(context.Background(), "INV-1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, Invoice{ID: "in_ours", Status: "open", OurID: "INV-1"}, inv, "a voided invoice is not the one billed")
	require.Equal(t, "metadata['signalbox_invoice_id']:'INV-1'", (*reqs)[0].URL.Query().Get("query"))

	lines, _, _ := stripeLike(t, 200, nil, `{"object":"list","url":"/v1/invoiceitems","data":[
		{"id":"ii_1","object":"invoiceitem","invoice":"in_ours","metadata":{"signalbox_line_no":"1"}},
		{"id":"ii_x","object":"invoiceitem","invoice":"in_other","metadata":{"signalbox_line_no":"2"}},
		{"id":"ii_3","object":"invoiceitem","invoice":"in_ours","metadata":{"signalbox_line_no":"3"}}],"has_more":false}`)
	got, err := lines.InvoiceLines(context.Background(), "in_ours")
	require.NoError(t, err)
	require.Equal(t, []int{1, 3}, got)
}

// Reconciliation reads when an invoice reached its status, for the order in
// which payment events apply.
func TestGetInvoiceReadsWhenItReachedItsStatus(t *testing.T) {
	t.Parallel()
	c, _, _ := stripeLike(t, 200, nil, `{"id":"in_1","object":"invoice","status":"paid","created":1795000000,"total":4700,
		"amount_due":4700,"amount_paid":4700,"currency":"eur","metadata":{"signalbox_invoice_id":"INV-1"},
		"status_transitions":{"finalized_at":1795000100,"paid_at":1795000200}}`)
	inv, err := c.GetInvoice(context.Background(), "in_1")
	require.NoError(t, err)
	require.Equal(t, Invoice{ID: "in_1", Status: "paid", Total: 4700, AmountDue: 4700, AmountPaid: 4700, Currency: "eur", OurID: "INV-1",
		StatusAt: time.Unix(1795000200, 0).UTC()}, inv)

	c, _, _ = stripeLike(t, 200, nil, `{"id":"in_2","object":"invoice","status":"draft","created":1795000000}`)
	inv, err = c.GetInvoice(context.Background(), "in_2")
	require.NoError(t, err)
	require.Equal(t, time.Unix(1795000000, 0).UTC(), inv.StatusAt, "a draft: when it was created")
}

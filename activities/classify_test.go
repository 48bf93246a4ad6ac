package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/signalbox-dev/signalbox/api"
	"github.com/signalbox-dev/signalbox/connectors/billing"
	"github.com/signalbox-dev/signalbox/connectors/rest"
)

// respond makes a server that answers every request with status, header and body.
func respond(t *testing.T, status int, header map[string]string, body string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func call(url string, timeout time.Duration) error {
	return rest.NewClient("crm", url, rest.HTTPClient(timeout, 0), nil).Do(context.Background(), rest.Request{Method: "POST", Path: "/x"}, nil)
}

func TestClassifyRealResponses(t *testing.T) {
	t.Parallel()
	// A Retry-After date: the delay is judged against the clock around the
	// call, not the test's start (a loaded machine may start a subtest late).
	at := time.Now().Add(90 * time.Second).Truncate(time.Second)
	future := at.UTC().Format(http.TimeFormat)
	const untilDate = -1 // delayMin and delayMax of a Retry-After date
	cases := []struct {
		name         string
		status       int
		header       map[string]string
		body         string
		typ          string
		nonRetryable bool
		benign       bool
		delayMin     time.Duration
		delayMax     time.Duration
	}{
		{"400 validation", 400, nil, `{"category":"VALIDATION_ERROR","message":"bad email"}`, string(api.ErrorTargetRejected), true, true, 0, 0},
		{"404", 404, nil, `{"message":"not found"}`, string(api.ErrorTargetRejected), true, true, 0, 0},
		{"422", 422, nil, `{}`, string(api.ErrorTargetRejected), true, true, 0, 0},
		{"401", 401, nil, `{"category":"INVALID_AUTHENTICATION"}`, string(api.ErrorAuthFailed), true, false, 0, 0},
		{"403", 403, nil, `forbidden`, string(api.ErrorAuthFailed), true, false, 0, 0},
		{"409", 409, nil, `{"category":"CONFLICT","message":"Contact already exists. Existing ID: 5"}`, string(api.ErrorConflict), true, true, 0, 0},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, ``, string(api.ErrorRateLimited), false, true, 7*time.Second + RetryAfterMargin, 7*time.Second + RetryAfterMargin},
		{"429 date", 429, map[string]string{"Retry-After": future}, ``, string(api.ErrorRateLimited), false, true, untilDate, untilDate},
		{"429 now", 429, map[string]string{"Retry-After": "0"}, ``, string(api.ErrorRateLimited), false, true, 0, 0},
		{"429 capped", 429, map[string]string{"Retry-After": "86400"}, ``, string(api.ErrorRateLimited), false, true, MaxRetryAfter, MaxRetryAfter},
		{"429 without header", 429, nil, ``, string(api.ErrorRateLimited), false, true, 0, 0},
		{"408", 408, nil, ``, string(api.ErrorTargetUnavailable), false, false, 0, 0},
		{"500", 500, nil, ``, string(api.ErrorTargetUnavailable), false, false, 0, 0},
		{"502", 502, nil, `<html>bad gateway</html>`, string(api.ErrorTargetUnavailable), false, false, 0, 0},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "3"}, ``, string(api.ErrorTargetUnavailable), false, false, 3*time.Second + RetryAfterMargin, 3*time.Second + RetryAfterMargin},
		{"502 with Retry-After date", 502, map[string]string{"Retry-After": future}, ``, string(api.ErrorTargetUnavailable), false, false, untilDate, untilDate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := respond(t, tc.status, tc.header, tc.body)
			before := time.Now()
			err := Classify(call(url, time.Second))
			if tc.delayMin == untilDate {
				tc.delayMin, tc.delayMax = at.Sub(time.Now()), at.Sub(before)+RetryAfterMargin
			}
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tc.typ, appErr.Type())
			require.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			require.Equal(t, tc.benign, appErr.Category() == temporal.ApplicationErrorCategoryBenign)
			require.GreaterOrEqual(t, appErr.NextRetryDelay(), tc.delayMin)
			require.LessOrEqual(t, appErr.NextRetryDelay(), tc.delayMax)
		})
	}
}

func TestClassifyStripeIdempotencyErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body   string
		status       int
		typ          string
		nonRetryable bool
		says         string
	}{
		{"key in use", `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): k."}}`,
			409, string(api.ErrorTargetUnavailable), false, "still running; retrying"},
		{"key reused with other parameters", `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'k' if you meant to execute a different request."}}`,
			400, string(api.ErrorIdempotencyMisuse), true, "this is a bug in signalbox, please report it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := respond(t, tc.status, map[string]string{"Content-Type": "application/json"}, tc.body)
			_, err := billing.New(url, "sk_test_x", rest.HTTPClient(time.Second, 0)).Finalize(context.Background(), "in_1", "k")
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, Classify(err), &appErr)
			require.Equal(t, tc.typ, appErr.Type())
			require.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			require.Contains(t, appErr.Message(), tc.says)
		})
	}
}

// A call the client holds back for the target's pause past its deadline is
// rate limited, and retries when the pause ends.
func TestClassifyCallHeldBackByThePause(t *testing.T) {
	t.Parallel()
	c := rest.NewClient("crm", respond(t, 429, map[string]string{"Retry-After": "60"}, ``), rest.HTTPClient(time.Second, 0), nil)
	require.Error(t, c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}, nil))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, Classify(c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}, nil)), &appErr)
	require.Equal(t, string(api.ErrorRateLimited), appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "not sent")
	require.InDelta(t, 60*time.Second+RetryAfterMargin, appErr.NextRetryDelay(), float64(5*time.Second))
}

func TestClassifyTransportFailures(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	for name, err := range map[string]error{
		"connection refused": call(closed.URL, time.Second),
		"timeout":            call(hang.URL, 50*time.Millisecond),
	} {
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, Classify(err), &appErr, name)
		require.Equal(t, string(api.ErrorTargetUnavailable), appErr.Type(), name)
		require.False(t, appErr.NonRetryable(), name)
	}
}

func TestClassifyOtherErrors(t *testing.T) {
	t.Parallel()
	require.NoError(t, Classify(nil))
	require.ErrorIs(t, Classify(context.Canceled), context.Canceled, "cancellation passes through")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, Classify(errors.New("pg: too many connections")), &appErr)
	require.Equal(t, string(api.ErrorInternal), appErr.Type())
	require.False(t, appErr.NonRetryable())
	already := temporal.NewNonRetryableApplicationError("x", "Custom", nil)
	require.Same(t, already, Classify(already), "an error is classified once")
}

func TestRejectionDetailsReachTheWorkflow(t *testing.T) {
	t.Parallel()
	err := Classify(call(respond(t, 400, nil, `{"error":{"type":"invalid_request_error","message":"No such currency: zzz","param":"currency"}}`), time.Second))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	var r Rejection
	require.NoError(t, appErr.Details(&r))
	require.Equal(t, Rejection{Target: "crm", Status: 400, Code: "invalid_request_error", Message: "No such currency: zzz", Param: "currency"}, r)
}

func TestClassifiedMessagesCarryNoEmailAddresses(t *testing.T) {
	t.Parallel()
	body := `{"category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"message\":\"Email address edsger@dijkstra.invalid is invalid\"}]"}`
	err := Classify(call(respond(t, 400, nil, body), time.Second))
	require.NotContains(t, err.Error(), "edsger@")
	require.Contains(t, err.Error(), "Email address <email> is invalid")
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	var r Rejection
	require.NoError(t, appErr.Details(&r))
	require.NotContains(t, r.Message, "edsger@")
	require.Equal(t, "contact <email>, <email>; and a@b", redact("contact a.b+c@x.example.com, D@Y.ORG; and a@b"))
}

package emulator

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchCompanies is how many companies the benchmarks' CRM holds, as many as
// make bench's customer sync creates.
const benchCompanies = 10_000

// benchServer is a sandbox holding benchCompanies companies, the i-th (from
// 0) with signalbox_customer_id CUST-i, modified a second after the one
// before, and its handler.
func benchServer(b *testing.B) (*Server, http.Handler) {
	b.Helper()
	s := NewServer("tok", 42, nil, slog.New(slog.DiscardHandler))
	s.mu.Lock()
	for i := range benchCompanies {
		s.crm.companies.insert(map[string]string{
			"name": fmt.Sprintf("Company %d", i), "domain": fmt.Sprintf("c%d.example.com", i),
			"signalbox_customer_id": fmt.Sprintf("CUST-%d", i), "billing_email": fmt.Sprintf("billing@c%d.example.com", i),
		}, t0.Add(time.Duration(i)*time.Second))
	}
	s.mu.Unlock()
	return s, s.Handler()
}

// serve sends one request to h and fails the benchmark unless it answers want.
func serve(b *testing.B, h http.Handler, want int, method, path, body string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
}

// BenchmarkBatchReadByIDProperty is one batch read of 100 companies by
// signalbox_customer_id, as customer sync sends, among 10,000: the emulator's
// own cost of a request, from the request to the answer written.
func BenchmarkBatchReadByIDProperty(b *testing.B) {
	_, h := benchServer(b)
	bodies := make([]string, 0, 16)
	for r := range cap(bodies) {
		var inputs []string
		for i := range maxBatchInputs {
			inputs = append(inputs, fmt.Sprintf(`{"id":"CUST-%d"}`, (r*maxBatchInputs+i)*37%benchCompanies))
		}
		bodies = append(bodies, `{"idProperty":"signalbox_customer_id","properties":["name","signalbox_customer_id"],"inputs":[`+strings.Join(inputs, ",")+`]}`)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		serve(b, h, http.StatusOK, "POST", "/crm/v3/objects/companies/batch/read", bodies[i%len(bodies)])
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/maxBatchInputs, "µs/input")
}

// BenchmarkGetByIDProperty is one GET of a company by ?idProperty= among
// 10,000.
func BenchmarkGetByIDProperty(b *testing.B) {
	_, h := benchServer(b)
	for i := 0; b.Loop(); i++ {
		serve(b, h, http.StatusOK, "GET", fmt.Sprintf("/crm/v3/objects/companies/CUST-%d?idProperty=signalbox_customer_id", i*37%benchCompanies), "")
	}
}

// BenchmarkSearchByCustomerID is one search for the company carrying a
// customer ID among 10,000, as customer sync's FindCompany sends.
func BenchmarkSearchByCustomerID(b *testing.B) {
	_, h := benchServer(b)
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"filterGroups":[{"filters":[{"propertyName":"signalbox_customer_id","operator":"EQ","value":"CUST-%d"}]}],"properties":["name"],"limit":2}`, i*37%benchCompanies)
		serve(b, h, http.StatusOK, "POST", "/crm/v3/objects/companies/search", body)
	}
}

// BenchmarkSearchModifiedSince is one page of 100 of the companies modified
// since a time, oldest first, as customer sync's triage pages through them;
// every company matches.
func BenchmarkSearchModifiedSince(b *testing.B) {
	_, h := benchServer(b)
	since := t0.Add(-time.Hour).UnixMilli()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"GTE","value":"%d"}]}],"sorts":[{"propertyName":"hs_lastmodifieddate","direction":"ASCENDING"}],"properties":["signalbox_customer_id"],"limit":100,"after":"%d"}`, since, i%90*100)
		serve(b, h, http.StatusOK, "POST", "/crm/v3/objects/companies/search", body)
	}
}

// BenchmarkList is one page of 100 of the list endpoint among 10,000.
func BenchmarkList(b *testing.B) {
	_, h := benchServer(b)
	for i := 0; b.Loop(); i++ {
		serve(b, h, http.StatusOK, "GET", fmt.Sprintf("/crm/v3/objects/companies?limit=100&after=%d", 1_000_001+i%90*100), "")
	}
}

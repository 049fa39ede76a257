package lambdahost

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tallyhq/tally/queue"
)

func TestSQSReportsExactlyTheFailedRecords(t *testing.T) {
	t.Parallel()
	sent := time.UnixMilli(1_700_000_000_123)
	msgs := []queue.Message{
		{ID: "a", ReceiptHandle: "h-a", Body: "ok", ReceiveCount: 1, SentAt: sent, FirstReceivedAt: sent, Attributes: map[string]string{"k": "v"}},
		{ID: "b", ReceiptHandle: "h-b", Body: "fail", ReceiveCount: 3, SentAt: sent, FirstReceivedAt: sent},
		{ID: "c", ReceiptHandle: "h-c", Body: "ok", ReceiveCount: 1, SentAt: sent, FirstReceivedAt: sent},
	}
	var got []queue.Message
	h := SQS("test", func(_ context.Context, ms []queue.Message) []error {
		got = ms
		errs := make([]error, len(ms))
		for i, m := range ms {
			if m.Body == "fail" {
				errs[i] = errors.New("boom")
			}
		}
		return errs
	}, nil)
	resp, err := h(context.Background(), Event("arn:aws:sqs:us-east-1:1:q", "us-east-1", msgs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.BatchItemFailures, []events.SQSBatchItemFailure{{ItemIdentifier: "b"}}) {
		t.Errorf("failures %+v, want only b", resp.BatchItemFailures)
	}
	for i := range msgs {
		if msgs[i].Attributes == nil {
			msgs[i].Attributes = map[string]string{}
		}
	}
	if !reflect.DeepEqual(got, msgs) {
		t.Errorf("handler saw\n%+v\nwant\n%+v", got, msgs)
	}
}

func TestSQSShortResultFailsTheRest(t *testing.T) {
	t.Parallel()
	h := SQS("test", func(context.Context, []queue.Message) []error { return []error{nil} }, nil)
	resp, _ := h(context.Background(), Event("arn", "us-east-1", []queue.Message{{ID: "a"}, {ID: "b"}}))
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "b" {
		t.Errorf("failures %+v, want b (no result for it)", resp.BatchItemFailures)
	}
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	png := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 0xff}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"q":"` + r.URL.Query().Get("q") + `","host":"` + r.Host + `","cookie":"` + r.Header.Get("Cookie") + `","len":` + string(rune('0'+len(b))) + `}`))
	})
	mux.HandleFunc("GET /img", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	})
	h := HTTP(mux)
	req := func(method, path, query, body string, b64 bool) events.APIGatewayV2HTTPRequest {
		var ev events.APIGatewayV2HTTPRequest
		ev.RequestContext.HTTP.Method = method
		ev.RequestContext.DomainName = "api.example.com"
		ev.RawPath, ev.RawQueryString, ev.Body, ev.IsBase64Encoded = path, query, body, b64
		ev.Headers = map[string]string{"content-type": "application/octet-stream"}
		ev.Cookies = []string{"a=1", "b=2"}
		return ev
	}
	tests := []struct {
		name       string
		ev         events.APIGatewayV2HTTPRequest
		wantStatus int
		wantBody   string
		wantB64    bool
		wantCookie bool
	}{
		{"text body", req("POST", "/echo", "q=x%20y", "abc", false), 201, `{"q":"x y","host":"api.example.com","cookie":"a=1; b=2","len":3}`, false, true},
		{"base64 body", req("POST", "/echo", "", base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 3, 4}), true), 201, `{"q":"","host":"api.example.com","cookie":"a=1; b=2","len":5}`, false, true},
		{"binary response", req("GET", "/img", "", "", false), 200, base64.StdEncoding.EncodeToString(png), true, false},
		{"not found", req("GET", "/nope", "", "", false), 404, "404 page not found\n", false, false},
		{"bad base64", req("POST", "/echo", "", "%%%", true), 400, "", false, false},
		{"no method", req("", "/echo", "", "", false), 400, "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := h(context.Background(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if tc.wantBody != "" && resp.Body != tc.wantBody {
				t.Errorf("body %q, want %q", resp.Body, tc.wantBody)
			}
			if resp.IsBase64Encoded != tc.wantB64 {
				t.Errorf("base64 %v, want %v", resp.IsBase64Encoded, tc.wantB64)
			}
			if tc.wantCookie && (len(resp.Cookies) != 1 || resp.Cookies[0] != "s=1") {
				t.Errorf("cookies %v, want [s=1]", resp.Cookies)
			}
		})
	}
}

package lambdahost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tallyhq/tally/queue"
)

// FuzzSQSEvent: any payload the runtime hands the SQS handler either
// fails to decode as an SQSEvent or gives one message per record, in
// order, with the record's id, handle and body, and a response that names
// exactly the records whose handling failed.
func FuzzSQSEvent(f *testing.F) {
	for _, s := range []string{
		`{"Records":[{"messageId":"a","receiptHandle":"h-a","body":"ok","attributes":{"ApproximateReceiveCount":"1","SentTimestamp":"1700000000123","ApproximateFirstReceiveTimestamp":"1700000000123"},"messageAttributes":{"k":{"stringValue":"v","dataType":"String"}},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q","awsRegion":"us-east-1"},{"messageId":"b","receiptHandle":"h-b","body":"fail","attributes":{"ApproximateReceiveCount":"x","SentTimestamp":"-1"}}]}`,
		`{"Records":[{"messageId":"a","body":"fail"},{"messageId":"a","body":"ok","messageAttributes":{"n":{"binaryValue":"AAE=","dataType":"Binary"}}}]}`,
		`{"Records":[]}`, `{}`, `null`, `[]`, `{"Records":[null]}`, `{"Records":{}}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ev events.SQSEvent
		decodeErr := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev) // as the runtime reads it
		var got []queue.Message
		h := lambda.NewHandler(SQS("fuzz", func(_ context.Context, ms []queue.Message) []error {
			got = ms
			errs := make([]error, len(ms))
			for i, m := range ms {
				if m.Body == "fail" || i%3 == 2 {
					errs[i] = errors.New("failed")
				}
			}
			return errs
		}, slog.New(slog.DiscardHandler)))
		out, err := h.Invoke(context.Background(), payload)
		if decodeErr != nil {
			if err == nil {
				t.Fatalf("invoked with an undecodable event: %v", decodeErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Invoke = %v, want a response", err)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response %s: %v", out, err)
		}
		if len(ev.Records) == 0 {
			if got != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("an empty batch was handled: %v %v", got, resp)
			}
			return
		}
		if len(got) != len(ev.Records) {
			t.Fatalf("%d messages for %d records", len(got), len(ev.Records))
		}
		var want []string
		for i, r := range ev.Records {
			m := got[i]
			if m.ID != r.MessageId || m.ReceiptHandle != r.ReceiptHandle || m.Body != r.Body || m.ReceiveCount < 0 && r.Attributes["ApproximateReceiveCount"] == "" {
				t.Fatalf("record %d became %+v", i, m)
			}
			if r.Body == "fail" || i%3 == 2 {
				want = append(want, r.MessageId)
			}
		}
		if len(resp.BatchItemFailures) != len(want) {
			t.Fatalf("failures %v, want %v", resp.BatchItemFailures, want)
		}
		for i, fl := range resp.BatchItemFailures {
			if fl.ItemIdentifier != want[i] {
				t.Fatalf("failures %v, want %v", resp.BatchItemFailures, want)
			}
		}
	})
}

// FuzzHTTPEvent: any payload the runtime hands the HTTP handler either
// fails to decode as an APIGatewayV2HTTPRequest or is answered (never an
// invocation error): a 400 for a request that cannot be rebuilt, else the
// handler's answer, whose body — text or base64 — arrives through the
// runtime's JSON byte for byte, and whose request saw the event's method
// and body.
func FuzzHTTPEvent(f *testing.F) {
	for _, s := range []string{
		`{"version":"2.0","rawPath":"/upload-status","rawQueryString":"image_id=a&b=%20","headers":{"content-type":"text/plain","host":"h.example"},"cookies":["a=1","b=2"],"requestContext":{"domainName":"x.example","http":{"method":"GET","sourceIp":"1.2.3.4"}},"body":"hello","isBase64Encoded":false}`,
		`{"rawPath":"/receipts","headers":{"Content-Type":"application/octet-stream"},"requestContext":{"http":{"method":"POST"}},"body":"AAECAwT/","isBase64Encoded":true}`,
		`{"rawPath":"/x","requestContext":{"http":{"method":"POST"}},"body":"not base64!","isBase64Encoded":true}`,
		`{"rawPath":"","requestContext":{"http":{"method":"BAD METHOD"}}}`,
		`{"rawPath":"/%zz","requestContext":{"http":{"method":"GET"}}}`,
		`{"rawPath":"/t","headers":{"x-type":"text/plain"},"requestContext":{"http":{"method":"PUT"}},"body":"\u00ff\u00fe","isBase64Encoded":false}`,
		`{"rawPath":"/t","headers":{"x-type":"application/json"},"requestContext":{"http":{"method":"PUT"}},"body":"/w==","isBase64Encoded":true}`,
		`{}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ev events.APIGatewayV2HTTPRequest
		decodeErr := json.NewDecoder(bytes.NewReader(payload)).Decode(&ev) // as the runtime reads it
		var seen struct {
			called bool
			method string
			body   []byte
		}
		// The handler echoes the body with the content type the request asks for.
		h := lambda.NewHandler(HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.called, seen.method = true, r.Method
			seen.body, _ = io.ReadAll(r.Body)
			w.Header().Set("Content-Type", r.Header.Get("X-Type"))
			w.Header().Add("Set-Cookie", "s=1")
			w.WriteHeader(http.StatusTeapot)
			w.Write(seen.body)
		})))
		out, err := h.Invoke(context.Background(), payload)
		if decodeErr != nil {
			if err == nil {
				t.Fatalf("invoked with an undecodable event: %v", decodeErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Invoke = %v, want a response", err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response %s: %v", out, err)
		}
		if !seen.called {
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("not handled but %d", resp.StatusCode)
			}
			return
		}
		if resp.StatusCode != http.StatusTeapot || seen.method != ev.RequestContext.HTTP.Method || len(resp.Cookies) != 1 {
			t.Fatalf("handled %s as %s: %d %v", ev.RequestContext.HTTP.Method, seen.method, resp.StatusCode, resp.Cookies)
		}
		want := []byte(ev.Body)
		if ev.IsBase64Encoded {
			want, _ = base64.StdEncoding.DecodeString(ev.Body)
		}
		if !bytes.Equal(seen.body, want) {
			t.Fatalf("the handler read %q, the event sent %q", seen.body, want)
		}
		body := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
				t.Fatalf("response body is not base64: %v", err)
			}
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("the handler wrote %q (as %q), the client gets %q", want, resp.Headers["Content-Type"], body)
		}
	})
}

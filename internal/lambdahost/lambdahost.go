// Package lambdahost adapts Tally's handlers to AWS Lambda's event shapes:
// an SQS event source mapping's batch (with partial batch responses) and an
// API Gateway HTTP API request (payload format 2.0). The workers stay
// written against the queue port and net/http; only this package knows the
// Lambda payloads.
package lambdahost

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/tallyhq/tally"
	"github.com/tallyhq/tally/queue"
)

// BatchHandler handles received messages and returns one error per
// message: nil when it is finished with, else why it must be retried.
type BatchHandler func(ctx context.Context, msgs []queue.Message) []error

// SQS returns the Lambda handler for an SQS event source mapping with
// ReportBatchItemFailures: its response names exactly the records whose
// handling failed, so SQS retries (and eventually dead-letters) only those,
// and Lambda deletes the rest. It never fails the invocation for a record's
// failure, which would retry every record of the batch.
func SQS(name string, handle BatchHandler, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		if len(ev.Records) == 0 {
			return resp, nil
		}
		errs := handle(ctx, Messages(ev))
		for i, r := range ev.Records {
			var err error
			if i < len(errs) {
				err = errs[i]
			} else {
				err = fmt.Errorf("handler returned %d results for %d records", len(errs), len(ev.Records))
			}
			if err != nil {
				log.Warn("record failed; SQS will retry it", "handler", name, "message_id", r.MessageId, "receive_count", r.Attributes["ApproximateReceiveCount"], "err", err)
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}
}

// Messages converts an SQS event's records into the queue port's messages,
// so the batch code that serves `tally worker` serves Lambda unchanged.
func Messages(ev events.SQSEvent) []queue.Message {
	msgs := make([]queue.Message, len(ev.Records))
	for i, r := range ev.Records {
		n, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		attrs := make(map[string]string, len(r.MessageAttributes))
		for k, v := range r.MessageAttributes {
			if v.StringValue != nil {
				attrs[k] = *v.StringValue
			}
		}
		msgs[i] = queue.Message{
			ID: r.MessageId, ReceiptHandle: r.ReceiptHandle, Body: r.Body, Attributes: attrs, ReceiveCount: n,
			SentAt:          millis(r.Attributes["SentTimestamp"]),
			FirstReceivedAt: millis(r.Attributes["ApproximateFirstReceiveTimestamp"]),
		}
	}
	return msgs
}

// Event builds the SQSEvent the event source mapping would deliver for
// received messages of the queue with the given ARN: what tests and local
// drivers use to invoke an SQS handler exactly as Lambda does.
func Event(queueARN, region string, msgs []queue.Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.Attributes {
			attrs[k] = events.SQSMessageAttribute{StringValue: &v, DataType: "String"}
		}
		ev.Records[i] = events.SQSMessage{
			MessageId: m.ID, ReceiptHandle: m.ReceiptHandle, Body: m.Body,
			Attributes: map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
				"SentTimestamp":                    strconv.FormatInt(m.SentAt.UnixMilli(), 10),
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceivedAt.UnixMilli(), 10),
			},
			MessageAttributes: attrs,
			EventSource:       "aws:sqs",
			EventSourceARN:    queueARN,
			AWSRegion:         region,
		}
	}
	return ev
}

func millis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// HTTP returns the Lambda handler for an API Gateway HTTP API (payload
// format 2.0) that serves h: the request becomes an *http.Request, the
// recorded response an APIGatewayV2HTTPResponse (binary bodies base64).
// A request that cannot be decoded is a 400, not an invocation error.
func HTTP(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := Request(ctx, ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusBadRequest,
				Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
				Body:       err.Error() + "\n",
			}, nil
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return Response(rec.Result().StatusCode, rec.Header(), rec.Body.Bytes()), nil
	}
}

// Request converts an HTTP API request into an *http.Request.
func Request(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, fmt.Errorf("lambda http request has no method: %w", tally.ErrInvalidArgument)
	}
	path := ev.RawPath
	if path == "" {
		path = "/"
	}
	target := path
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("lambda http request body is not valid base64: %w", tally.ErrInvalidArgument)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lambda http request %s %q: %v: %w", method, target, err, tally.ErrInvalidArgument)
	}
	for k, v := range ev.Headers {
		// HTTP APIs join repeated headers with commas, as HTTP allows.
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.ContentLength = int64(len(body))
	req.Host = ev.RequestContext.DomainName
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	req.RequestURI = target
	return req, nil
}

// Response converts a status, headers and body into an HTTP API response.
// Text bodies travel as they are; anything else is base64, and so is a
// "text" body that is not UTF-8, which the runtime's JSON would mangle.
func Response(status int, header http.Header, body []byte) events.APIGatewayV2HTTPResponse {
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range header {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ",")
	}
	if isText(header.Get("Content-Type")) && utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(body)
		resp.IsBase64Encoded = true
	}
	return resp
}

func isText(contentType string) bool {
	if contentType == "" {
		return true // empty bodies and plain errors
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || strings.HasSuffix(mt, "+xml") || mt == "application/javascript"
}

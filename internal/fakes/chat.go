package fakes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ChatMessage is one message of a Chat Completions request.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatJSONSchema is response_format.json_schema of a request.
type ChatJSONSchema struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Strict      bool           `json:"strict"`
	Schema      map[string]any `json:"schema"`
}

// ChatResponseFormat is a request's response_format.
type ChatResponseFormat struct {
	Type       string          `json:"type"`
	JSONSchema *ChatJSONSchema `json:"json_schema,omitempty"`
}

// ChatRequest is what the fake Chat Completions server decoded from one
// request; the answer function gets it to decide its reply.
type ChatRequest struct {
	// N numbers the requests the server accepted, from 0.
	N                   int                 `json:"-"`
	Auth                string              `json:"-"` // the Authorization header
	Raw                 []byte              `json:"-"` // the body as sent
	Model               string              `json:"model"`
	Messages            []ChatMessage       `json:"messages"`
	ResponseFormat      *ChatResponseFormat `json:"response_format,omitempty"`
	MaxCompletionTokens int                 `json:"max_completion_tokens,omitempty"`
	MaxTokens           int                 `json:"max_tokens,omitempty"`
	Temperature         *float64            `json:"temperature,omitempty"`
	Seed                *int                `json:"seed,omitempty"`
	User                string              `json:"user,omitempty"`
}

// ChatReply is the fake server's answer to one request.
type ChatReply struct {
	Status int // 0 means 200
	Header map[string]string
	Body   string
}

// Chat is a fake OpenAI Chat Completions server (POST /v1/chat/completions).
// It rejects what the real API rejects and Tally could get wrong (a body
// that is not JSON, unknown request arguments, no messages, a json_schema
// response format without a name or schema, a strict schema whose objects
// do not list every property as required or allow additional properties)
// with the API's 400 error body, and lets the test answer the rest.
type Chat struct {
	URL      string // base URL, ending in /v1
	requests atomic.Int64

	mu   sync.Mutex
	seen []ChatRequest
}

// Requests is how many requests reached the answer function.
func (c *Chat) Requests() int64 { return c.requests.Load() }

// Seen returns the requests that reached the answer function, in order.
func (c *Chat) Seen() []ChatRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// NewChat starts a fake Chat Completions server for the life of tb;
// answer replies to each well-formed request (it may be called
// concurrently).
func NewChat(tb testing.TB, answer func(req ChatRequest) ChatReply) *Chat {
	tb.Helper()
	c := &Chat{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			writeChatError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			writeChatError(w, http.StatusBadRequest, "We could not read your request body.", "invalid_request_error", "")
			return
		}
		var req ChatRequest
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeChatError(w, http.StatusBadRequest, "We could not parse the JSON body of your request, or it has an unrecognized argument: "+err.Error(), "invalid_request_error", "")
			return
		}
		if msg := checkChatRequest(req); msg != "" {
			writeChatError(w, http.StatusBadRequest, msg, "invalid_request_error", "")
			return
		}
		req.Raw, req.Auth = raw, r.Header.Get("Authorization")
		c.mu.Lock()
		req.N = len(c.seen)
		c.seen = append(c.seen, req)
		c.mu.Unlock()
		c.requests.Add(1)

		rep := answer(req)
		for k, v := range rep.Header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		if rep.Status == 0 {
			rep.Status = http.StatusOK
		}
		w.WriteHeader(rep.Status)
		_, _ = io.WriteString(w, rep.Body)
	}))
	tb.Cleanup(srv.Close)
	c.URL = srv.URL + "/v1"
	return c
}

var schemaName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// checkChatRequest returns the API's complaint about req, or "".
func checkChatRequest(req ChatRequest) string {
	if req.Model == "" {
		return "you must provide a model parameter"
	}
	if len(req.Messages) == 0 {
		return "[] is too short - 'messages'"
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'developer'. ('messages[%d].role')", m.Role, i)
		}
	}
	rf := req.ResponseFormat
	if rf == nil {
		return ""
	}
	switch rf.Type {
	case "text", "json_object":
		return ""
	case "json_schema":
	default:
		return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'json_object', 'json_schema', and 'text'. ('response_format.type')", rf.Type)
	}
	switch {
	case rf.JSONSchema == nil:
		return "Missing required parameter: 'response_format.json_schema'."
	case !schemaName.MatchString(rf.JSONSchema.Name):
		return fmt.Sprintf("Invalid 'response_format.json_schema.name': string does not match pattern. Got %q", rf.JSONSchema.Name)
	case rf.JSONSchema.Schema == nil:
		return "Missing required parameter: 'response_format.json_schema.schema'."
	case rf.JSONSchema.Strict:
		if msg := strictSchemaError(rf.JSONSchema.Schema, "schema"); msg != "" {
			return "Invalid schema for response_format '" + rf.JSONSchema.Name + "': " + msg
		}
	}
	return ""
}

// strictSchemaError checks a schema as OpenAI's strict mode does: the
// root is an object; every object sets additionalProperties false and
// lists every property in required; nested schemas too.
func strictSchemaError(s map[string]any, where string) string {
	typ, _ := s["type"].(string)
	if where == "schema" && typ != "object" {
		return "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"" + typ + "\"'."
	}
	switch typ {
	case "object":
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			return "In context=(" + where + "), 'additionalProperties' is required to be supplied and to be false."
		}
		props, _ := s["properties"].(map[string]any)
		var required []string
		if rs, ok := s["required"].([]any); ok {
			for _, r := range rs {
				name, _ := r.(string)
				required = append(required, name)
			}
		}
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !slices.Contains(required, k) {
				return "In context=(" + where + "), 'required' is required to be supplied and to be an array including every key in properties. Missing '" + k + "'."
			}
			sub, ok := props[k].(map[string]any)
			if !ok {
				return "In context=(" + where + ", properties, " + k + "), schema must be an object."
			}
			if msg := strictSchemaError(sub, where+", properties, "+k); msg != "" {
				return msg
			}
		}
	case "array":
		sub, ok := s["items"].(map[string]any)
		if !ok {
			return "In context=(" + where + "), array schema missing items."
		}
		return strictSchemaError(sub, where+", items")
	case "string", "integer", "number", "boolean", "null":
	default:
		return "In context=(" + where + "), unsupported type '" + typ + "'."
	}
	return ""
}

// ChatCompletion is a 200 body of the real shape holding one choice whose
// message content is content, ending for finish ("stop", "length", …).
func ChatCompletion(model, content, finish string) string {
	return chatBody(model, map[string]any{"role": "assistant", "content": content, "refusal": nil}, finish, len(content)/4+1)
}

// ChatRefusal is a 200 body whose one choice refuses, as a structured
// output request's refusal arrives: content null, refusal set.
func ChatRefusal(model, refusal string) string {
	return chatBody(model, map[string]any{"role": "assistant", "content": nil, "refusal": refusal}, "stop", len(refusal)/4+1)
}

// ChatError is an error body of the API's shape.
func ChatError(message, typ, code string) string {
	e := map[string]any{"message": message, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return string(b)
}

var chatIDs atomic.Int64

func chatBody(model string, message map[string]any, finish string, completionTokens int) string {
	b, _ := json.Marshal(map[string]any{
		"id":      fmt.Sprintf("chatcmpl-fake%06d", chatIDs.Add(1)),
		"object":  "chat.completion",
		"created": time.Now().Unix(),
		"model":   model,
		"choices": []any{map[string]any{
			"index": 0, "message": message, "logprobs": nil, "finish_reason": finish,
		}},
		"usage": map[string]any{
			"prompt_tokens": 512, "completion_tokens": completionTokens, "total_tokens": 512 + completionTokens,
		},
		"system_fingerprint": "fp_fake",
	})
	return string(b)
}

func writeChatError(w http.ResponseWriter, status int, message, typ, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, ChatError(message, typ, code))
}

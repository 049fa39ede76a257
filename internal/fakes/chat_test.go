package fakes

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestChat(t *testing.T) {
	t.Parallel()
	c := NewChat(t, func(req ChatRequest) ChatReply {
		return ChatReply{Body: ChatCompletion(req.Model, `{"ok":true}`, "stop")}
	})
	strict := `{"type":"object","properties":{"a":{"type":"array","items":{"type":"object","properties":{"b":{"type":"string"}},"required":["b"],"additionalProperties":false}}},"required":["a"],"additionalProperties":false}`
	format := func(schema string) string {
		return `"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":` + schema + `}}`
	}
	msgs := `"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]`
	tests := []struct {
		name, body string
		status     int
		complaint  string
	}{
		{"good", `{"model":"m",` + msgs + `,` + format(strict) + `}`, 200, ""},
		{"no format", `{"model":"m",` + msgs + `}`, 200, ""},
		{"not JSON", `{`, 400, "parse"},
		{"unknown argument", `{"model":"m",` + msgs + `,"temprature":0}`, 400, "unrecognized"},
		{"no model", `{` + msgs + `}`, 400, "model"},
		{"no messages", `{"model":"m","messages":[]}`, 400, "messages"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, 400, "role"},
		{"property not required", `{"model":"m",` + msgs + `,` + format(strings.Replace(strict, `"required":["b"]`, `"required":[]`, 1)) + `}`, 400, "Missing 'b'"},
		{"additional properties", `{"model":"m",` + msgs + `,` + format(strings.Replace(strict, `"additionalProperties":false}}}`, `"additionalProperties":true}}}`, 1)) + `}`, 400, "additionalProperties"},
		{"root not an object", `{"model":"m",` + msgs + `,` + format(`{"type":"array","items":{"type":"string"}}`) + `}`, 400, "JSON Schema of"},
		{"no schema name", `{"model":"m",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"","strict":true,"schema":` + strict + `}}}`, 400, "name"},
	}
	for _, tt := range tests {
		resp, err := http.Post(c.URL+"/chat/completions", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(tt.complaint)) {
			t.Errorf("%s: HTTP %d %s, want %d mentioning %q", tt.name, resp.StatusCode, body, tt.status, tt.complaint)
		}
		if tt.status == 200 {
			var out struct {
				Object  string
				Choices []struct {
					Message      struct{ Role, Content string }
					FinishReason string `json:"finish_reason"`
				}
			}
			if json.Unmarshal(body, &out) != nil || out.Object != "chat.completion" || len(out.Choices) != 1 || out.Choices[0].Message.Content != `{"ok":true}` {
				t.Errorf("%s: body %s", tt.name, body)
			}
		}
	}
	if c.Requests() != 2 || len(c.Seen()) != 2 || c.Seen()[1].N != 1 {
		t.Errorf("Requests() = %d, Seen %d", c.Requests(), len(c.Seen()))
	}
}

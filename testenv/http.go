package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Response is an HTTP answer as tests look at it.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any // the JSON body, if it was an object
	Raw    string
}

// ErrorCode returns error.code of the JSON error shape, or "".
func (r Response) ErrorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// Field returns error.fields[name] of the JSON error shape, or nil.
func (r Response) Field(name string) any {
	e, _ := r.Body["error"].(map[string]any)
	f, _ := e["fields"].(map[string]any)
	return f[name]
}

// Do sends a request: a string body as it is, any other non-nil body as
// JSON, with Content-Type application/json unless a header pair (name,
// value, ...) overrides it. A transport failure is reported with
// tb.Errorf and a zero Response, so Do is safe to call from goroutines.
func Do(tb testing.TB, method, url string, body any, header ...string) Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Errorf("encode request body: %v", err)
			return Response{}
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Errorf("%s %s: %v", method, url, err)
		return Response{}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Errorf("%s %s: %v", method, url, err)
		return Response{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}

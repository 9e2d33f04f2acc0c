package httpserve

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
		{[]string{"br", "gzip;q=0.5"}, true},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.0, identity"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=0, *"}, false}, // gzip named and refused: "*" does not bring it back
		{[]string{"zstd, gzip;q=1.0"}, true},
		{[]string{"gzipped"}, false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

// The handler compresses when asked, answers plain otherwise, and the body
// is the same either way, also for a second response from a reused writer.
func TestGzipHandler(t *testing.T) {
	body := strings.Repeat("checkpoint_dir_checkpoints{target=\"run\"} 3\n", 500)
	h := NewGzip(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/fail" {
			http.Error(rw, "boom", http.StatusInternalServerError)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		io.WriteString(rw, body)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		// A transport of its own, which neither asks for gzip nor decodes it.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := io.Reader(resp.Body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for range 3 {
		resp, got := get("/", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" || got != body {
			t.Fatalf("gzip: encoding %q, body equal %v", resp.Header.Get("Content-Encoding"), got == body)
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("headers %v", resp.Header)
		}
	}
	resp, got := get("/", "")
	if resp.Header.Get("Content-Encoding") != "" || got != body {
		t.Errorf("identity: encoding %q, body equal %v", resp.Header.Get("Content-Encoding"), got == body)
	}
	resp, got = get("/fail", "gzip")
	if resp.StatusCode != http.StatusInternalServerError || strings.TrimSpace(got) != "boom" {
		t.Errorf("error response: %d %q", resp.StatusCode, got)
	}
}

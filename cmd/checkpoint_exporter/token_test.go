package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// postResolved posts a resolved alert (which prunes nothing) with token and
// returns the status code.
func postResolved(t *testing.T, base, token string) int {
	t.Helper()
	return postWebhook(t, base, token, `{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"target":"a"}}]}`)
}

// Rotating the webhook token revokes the old one at once, however the file
// is replaced: rewritten in place with the same size and the old mtime put
// back, renamed over, or switched by a symlink as Kubernetes does for
// mounted secrets.
func TestWebhookTokenRotationRevokesOldToken(t *testing.T) {
	root := t.TempDir()
	ckpt := filepath.Join(root, "models")
	os.Mkdir(ckpt, 0o755)
	secrets := filepath.Join(root, "secrets")
	os.Mkdir(secrets, 0o755)
	write := func(name, tok string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	write("v1", "token-aaaa", old)
	link := filepath.Join(secrets, "token")
	os.Symlink("v1", link)
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("targets:\n  - name: a\n    path: models\n"), 0o644)
	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+link)

	rotations := []struct {
		name, from, to string
		rotate         func(tok string)
	}{
		{"in place, same size, old mtime", "token-aaaa", "token-bbbb", func(tok string) { write("v1", tok, old) }},
		{"renamed over, same size, old mtime", "token-bbbb", "token-cccc", func(tok string) {
			tmp := write("v1.tmp", tok, old)
			if err := os.Rename(tmp, filepath.Join(secrets, "v1")); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink switched, same size, old mtime", "token-cccc", "token-dddd", func(tok string) {
			write("v2", tok, old)
			tmp := filepath.Join(secrets, "token.tmp")
			os.Symlink("v2", tmp)
			if err := os.Rename(tmp, link); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, r := range rotations {
		if code := postResolved(t, base, r.from); code != http.StatusOK {
			t.Fatalf("%s: current token %s answered %d before rotation; logs:\n%s", r.name, r.from, code, logs)
		}
		r.rotate(r.to)
		if code := postResolved(t, base, r.from); code != http.StatusUnauthorized {
			t.Errorf("%s: revoked token %s answered %d, want 401", r.name, r.from, code)
		}
		if code := postResolved(t, base, r.to); code != http.StatusOK {
			t.Errorf("%s: new token %s answered %d, want 200", r.name, r.to, code)
		}
	}
}

// A request carrying 23,000 alerts writes one summary log line, not one per
// alert, and gets an answer that groups them instead of echoing each.
func TestWebhookFloodLogsOneLine(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "models"), 0o755)
	tok := filepath.Join(root, "token")
	os.WriteFile(tok, []byte("t0ken"), 0o600)
	cfg := filepath.Join(root, "c.yml")
	os.WriteFile(cfg, []byte("targets:\n  - name: a\n    path: models\n"), 0o644)
	base, logs := serve(t, "--config.file="+cfg, "--webhook.token-file="+tok, "--webhook.max-body-bytes=4194304")
	var b strings.Builder
	b.WriteString(`{"version":"4","status":"firing","receiver":"flood","alerts":[`)
	const n = 23000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"X","target":"t%d"}}`, i)
	}
	b.WriteString(`]}`)
	before := strings.Count(logs.String(), "\n")
	req, _ := http.NewRequest(http.MethodPost, base+"/webhook", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer t0ken")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %.300s", resp.StatusCode, answer)
	}
	if len(answer) > 64<<10 {
		t.Errorf("answer is %d bytes for %d alerts, want at most 64 KiB", len(answer), n)
	}
	// The process writes its log before the answer, but the log reaches the
	// buffer through a pipe: wait for the summary, then count.
	waitLog(t, logs, `msg="webhook request" receiver=flood group_key= alerts=23000 firing=23000 ignored=23000`)
	if lines := strings.Count(logs.String(), "\n") - before; lines > 1 {
		t.Errorf("one request wrote %d log lines, want one summary", lines)
	}
}

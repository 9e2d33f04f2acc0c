package pruner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// currentToken returns the token, re-reading the file when its size or
// modification time changed.
func (w *Webhook) currentToken() ([]byte, error) {
	st, err := os.Stat(w.opts.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("webhook token file: %w", err)
	}
	stamp := strconv.FormatInt(st.ModTime().UnixNano(), 10) + "/" + strconv.FormatInt(st.Size(), 10)
	w.mu.Lock()
	defer w.mu.Unlock()
	if stamp == w.tokenStamp {
		return w.token, nil
	}
	data, err := os.ReadFile(w.opts.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("webhook token file: %w", err)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("webhook token file %s is empty", w.opts.TokenFile)
	}
	w.token, w.tokenStamp = tok, stamp
	return tok, nil
}

package alertmanager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxTokenBytes bounds what is read of the token file: a token is short,
// and a path pointed at something big must not cost a request much.
const maxTokenBytes = 4096

// readToken reads the bearer token from file. It is read afresh for every
// request: any rotation (rewritten in place with the old size and mtime,
// renamed over, a Kubernetes secret's symlink switched) revokes the old token
// at once, which no stat-based cache can promise.
func readToken(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("webhook token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return nil, fmt.Errorf("webhook token file: %w", err)
	}
	if len(data) > maxTokenBytes {
		return nil, fmt.Errorf("webhook token file %s is larger than %d bytes", file, maxTokenBytes)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, errors.New("webhook token file " + file + " is empty")
	}
	return tok, nil
}

// Command probe is the container HEALTHCHECK of the hcops CometBFT node image.
//
// It GETs the node's local RPC /status endpoint with a 2 s timeout and exits 0
// only when the answer is HTTP 200 with a JSON body whose
// result.sync_info.latest_block_height is a number (CometBFT encodes it as a
// decimal string; a bare JSON number is accepted too). Anything else exits 1
// with a one-line reason on stderr, which Docker keeps in the health log.
//
// "hcops-probe archive ..." is a second, unrelated mode: a token-guarded file
// server over the node's home folder for backups on Kubernetes (archive.go).
//
// Standard library only; built with CGO_ENABLED=0 so it runs in a FROM scratch
// image.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

const (
	defaultURL = "http://127.0.0.1:26657/status"
	timeout    = 2 * time.Second
	maxBody    = 1 << 20 // /status is ~1 KiB; refuse anything absurd
)

type status struct {
	Result *struct {
		SyncInfo *struct {
			LatestBlockHeight json.RawMessage `json:"latest_block_height"`
		} `json:"sync_info"`
	} `json:"result"`
}

// height extracts result.sync_info.latest_block_height from a /status body.
func height(body []byte) (int64, error) {
	var s status
	if err := json.Unmarshal(body, &s); err != nil {
		return 0, fmt.Errorf("body is not JSON: %w", err)
	}
	if s.Result == nil || s.Result.SyncInfo == nil || len(s.Result.SyncInfo.LatestBlockHeight) == 0 {
		return 0, errors.New("result.sync_info.latest_block_height missing")
	}
	raw := s.Result.SyncInfo.LatestBlockHeight
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("latest_block_height is neither a string nor a number: %s", raw)
		}
		text = n.String()
	}
	h, err := strconv.ParseInt(text, 10, 64)
	if err != nil || h < 0 {
		return 0, fmt.Errorf("latest_block_height is not a non-negative integer: %q", text)
	}
	return h, nil
}

func check(url string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	client := &http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("reading body: %w", err)
	}
	return height(body)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "archive" {
		os.Exit(runArchive(os.Args[2:]))
	}
	url := defaultURL
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	h, err := check(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "unhealthy: %s: %v\n", url, err)
		os.Exit(1)
	}
	fmt.Printf("healthy: latest_block_height=%d\n", h)
}

package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHeight(t *testing.T) {
	cases := []struct {
		body string
		want int64
		ok   bool
	}{
		{`{"jsonrpc":"2.0","id":-1,"result":{"sync_info":{"latest_block_height":"42"}}}`, 42, true},
		{`{"result":{"sync_info":{"latest_block_height":0}}}`, 0, true},
		{`{"result":{"sync_info":{"latest_block_height":"abc"}}}`, 0, false},
		{`{"result":{"sync_info":{"latest_block_height":"-3"}}}`, 0, false},
		{`{"result":{"sync_info":{"latest_block_height":null}}}`, 0, false},
		{`{"result":{"sync_info":{}}}`, 0, false},
		{`{"error":{"code":-32603}}`, 0, false},
		{`not json`, 0, false},
	}
	for _, c := range cases {
		got, err := height([]byte(c.body))
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("height(%s) = %d, %v; want %d ok=%v", c.body, got, err, c.want, c.ok)
		}
	}
}

func TestCheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"result":{"sync_info":{"latest_block_height":"7"}}}`))
	}))
	defer ok.Close()
	if h, err := check(ok.URL); err != nil || h != 7 {
		t.Fatalf("check(ok) = %d, %v", h, err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"result":{"sync_info":{"latest_block_height":"7"}}}`))
	}))
	defer bad.Close()
	if _, err := check(bad.URL); err == nil {
		t.Fatal("check(500) succeeded")
	}
}

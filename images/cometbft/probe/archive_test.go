package main

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

const testToken = "0123456789abcdef0123"

type member struct {
	name, body string
	typ        byte
}

func makeTar(t *testing.T, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: 0o644, Size: int64(len(m.body))}
		if m.typ == tar.TypeDir {
			hdr.Size, hdr.Mode = 0, 0o755
		}
		if m.typ == tar.TypeSymlink {
			hdr.Size, hdr.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			_, _ = tw.Write([]byte(m.body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}

func serve(t *testing.T) (*httptest.Server, string, *archiveServer) {
	t.Helper()
	dir := t.TempDir()
	s := &archiveServer{dir: dir, token: []byte(testToken), done: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, dir, s
}

func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set(tokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestArchiveNeedsTheToken(t *testing.T) {
	srv, _, _ := serve(t)
	if code, _ := do(t, "GET", srv.URL+"/healthz", "", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	for _, tok := range []string{"", "wrong", testToken + "x"} {
		if code, _ := do(t, "GET", srv.URL+"/tar?path=data", tok, nil); code != 403 {
			t.Errorf("token %q: %d, want 403", tok, code)
		}
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	srv, dir, s := serve(t)
	_ = os.MkdirAll(filepath.Join(dir, "data", "old.db"), 0o700)
	in := makeTar(t, []member{
		{"data/", "", tar.TypeDir},
		{"data/blockstore.db/000001.ldb", "blocks", tar.TypeReg},
		{"data/priv_validator_state.json", `{"height":"5"}`, tar.TypeReg},
	})
	code, out := do(t, "PUT", srv.URL+"/tar?clear=data", testToken, in)
	if code != 200 || !bytes.Contains(out, []byte(`"files":2`)) {
		t.Fatalf("put: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "old.db")); !os.IsNotExist(err) {
		t.Fatal("clear=data left the old folder")
	}
	code, got := do(t, "GET", srv.URL+"/tar?path=data", testToken, nil)
	if code != 200 {
		t.Fatalf("get: %d", code)
	}
	names := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(got))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		names[hdr.Name] = string(body)
	}
	if names["data/blockstore.db/000001.ldb"] != "blocks" || names["data/priv_validator_state.json"] != `{"height":"5"}` {
		t.Fatalf("round trip: %v", names)
	}
	if _, ok := names["data/"]; !ok {
		t.Fatalf("no folder entry: %v", names)
	}
	if code, _ := do(t, "GET", srv.URL+"/tar?path=nothing", testToken, nil); code != 404 {
		t.Fatalf("missing path: %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/done", testToken, nil); code != 200 {
		t.Fatalf("done: %d", code)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("done not signalled")
	}
}

func TestArchiveRefusesEscapesAndLinks(t *testing.T) {
	srv, dir, _ := serve(t)
	for _, m := range []member{
		{"../evil", "x", tar.TypeReg},
		{"/etc/evil", "x", tar.TypeReg},
		{"data/../../evil", "x", tar.TypeReg},
		{"data/link", "", tar.TypeSymlink},
	} {
		if code, _ := do(t, "PUT", srv.URL+"/tar", testToken, makeTar(t, []member{m})); code != 400 {
			t.Errorf("%s: %d, want 400", m.name, code)
		}
	}
	for _, q := range []string{"path=..", "path=/etc", "path=../x", "path="} {
		if code, _ := do(t, "GET", srv.URL+"/tar?"+q, testToken, nil); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	if code, _ := do(t, "PUT", srv.URL+"/tar?clear=..", testToken, nil); code != 400 {
		t.Errorf("clear=..: %d, want 400", code)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil")); !os.IsNotExist(err) {
		t.Fatal("a member escaped the folder")
	}
}

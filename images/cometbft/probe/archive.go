// The archive subcommand: a one-shot file server over a node's home folder,
// used by hcops on Kubernetes to copy a node's data in and out of its
// PersistentVolumeClaim. The node image has no shell and no tar; this lets a
// short-lived pod of the same image do the copy, reached through the API
// server's pod proxy, so no other image is needed in the cluster.
//
//	hcops-probe archive --dir /cometbft --listen :26680 --token-file FILE [--exit-after-done]
//
// Every request but GET /healthz must carry the header X-Hcops-Token with the
// contents of FILE (a one-time random token hcops puts in a Secret that only
// this pod mounts): anyone else who can reach the port through the proxy gets
// 403.
//
//	GET  /healthz                 200 "ok" (no token: only says it listens)
//	GET  /tar?path=data           tar of DIR/data, names "data/..."; 404 if absent
//	PUT  /tar?clear=data          removes DIR/data, then extracts the tar body into
//	                              DIR (directories and regular files only, no
//	                              absolute or ".." names); 200 {"files":N,"bytes":M}
//	POST /done                    200, then the process exits 0
//
// Standard library only, like the health probe.
package main

import (
	"archive/tar"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

const tokenHeader = "X-Hcops-Token"

type archiveServer struct {
	dir   string
	token []byte
	done  chan struct{}
}

// clean turns a request's relative path into a path under s.dir, or an error
// for anything absolute, empty or leaving the folder.
func (s *archiveServer) clean(rel string) (string, error) {
	if rel == "" || path.IsAbs(rel) || strings.Contains(rel, "\\") {
		return "", fmt.Errorf("bad path %q", rel)
	}
	c := path.Clean(rel)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("bad path %q", rel)
	}
	return filepath.Join(s.dir, filepath.FromSlash(c)), nil
}

func (s *archiveServer) authorized(r *http.Request) bool {
	got := []byte(r.Header.Get(tokenHeader))
	return len(s.token) > 0 && subtle.ConstantTimeCompare(got, s.token) == 1
}

func (s *archiveServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
		_, _ = io.WriteString(w, "ok")
		return
	}
	if !s.authorized(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	switch {
	case r.URL.Path == "/tar" && r.Method == http.MethodGet:
		s.get(w, r)
	case r.URL.Path == "/tar" && r.Method == http.MethodPut:
		s.put(w, r)
	case r.URL.Path == "/done" && r.Method == http.MethodPost:
		_, _ = io.WriteString(w, "bye")
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (s *archiveServer) get(w http.ResponseWriter, r *http.Request) {
	rel := r.URL.Query().Get("path")
	root, err := s.clean(rel)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Errors after the first byte cannot change the status: a cut stream is
	// a truncated tar, which the reader refuses.
	_ = writeTar(w, s.dir, root)
}

// writeTar writes root (a file or a folder, recursively) with names relative
// to base; symlinks and other special files are skipped, never followed.
func writeTar(out io.Writer, base, root string) error {
	tw := tar.NewWriter(out)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsDir() && !info.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func (s *archiveServer) put(w http.ResponseWriter, r *http.Request) {
	if rel := r.URL.Query().Get("clear"); rel != "" {
		target, err := s.clean(rel)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := os.RemoveAll(target); err != nil {
			http.Error(w, "clear: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	files, size, err := s.extract(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"files": files, "bytes": size})
}

// extract writes a tar's folders and regular files under s.dir; anything else
// (links, devices, absolute or escaping names) fails the whole request.
func (s *archiveServer) extract(body io.Reader) (int64, int64, error) {
	tr := tar.NewReader(body)
	var files, size int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, size, nil
		}
		if err != nil {
			return files, size, fmt.Errorf("reading the tar: %w", err)
		}
		target, err := s.clean(hdr.Name)
		if err != nil {
			return files, size, err
		}
		mode := os.FileMode(hdr.Mode).Perm() & 0o700 // the node's files are its own: no group or other bits
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return files, size, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return files, size, err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode|0o600)
			if err != nil {
				return files, size, err
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, size, fmt.Errorf("writing %s: %w", hdr.Name, err)
			}
			files++
			size += n
		default:
			return files, size, fmt.Errorf("refused member %q (type %c): folders and regular files only",
				hdr.Name, hdr.Typeflag)
		}
	}
}

func runArchive(args []string) int {
	fl := flag.NewFlagSet("archive", flag.ContinueOnError)
	dir := fl.String("dir", "/cometbft", "folder served")
	listen := fl.String("listen", ":26680", "address to listen on")
	tokenFile := fl.String("token-file", "", "file holding the token every request must carry")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	raw, err := os.ReadFile(*tokenFile)
	token := []byte(strings.TrimSpace(string(raw)))
	if err != nil || len(token) < 16 {
		fmt.Fprintln(os.Stderr, "archive: --token-file must name a file holding a token of 16+ characters")
		return 2
	}
	s := &archiveServer{dir: *dir, token: token, done: make(chan struct{})}
	srv := &http.Server{Addr: *listen, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	fmt.Printf("archive: serving %s on %s\n", *dir, *listen)
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "archive: %v\n", err)
		return 1
	case <-s.done:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return 0
}

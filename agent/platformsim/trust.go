package platformsim

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/ehc-agent/ehc-agent/offline/trust"
)

func (s *Server) handleKeySet(r *http.Request, _ string, _ []byte, _ time.Time) reply {
	return s.trustDocument(r, trust.KeySetFile, -1)
}

// handleRevocations requires since, as the spec's endpoint always carries it
// (`?since=<version>`): a terminal without a list asks since=0, and versions start at
// 1, so that is answered with any published list. Like a strict platform, the emulator
// refuses a request without it (400 missing_since) or with one that is not a decimal
// version (400 bad_since), so that an agent omitting it fails its tests here.
func (s *Server) handleRevocations(r *http.Request, _ string, _ []byte, _ time.Time) reply {
	vs, ok := r.URL.Query()["since"]
	if !ok {
		return reasonReply(http.StatusBadRequest, "missing_since")
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	if err != nil || len(vs) != 1 {
		return reasonReply(http.StatusBadRequest, "bad_since")
	}
	return s.trustDocument(r, trust.RevocationsFile, int64(n))
}

// trustDocument serves one file of the trust directory as it is on disk — the emulator
// does not check what it serves, so a test can make it serve a tampered document. A
// revocation list is served only when its version is above since (since < 0: always).
func (s *Server) trustDocument(r *http.Request, name string, since int64) reply {
	if s.trustDir == "" {
		return reasonReply(http.StatusNotFound, "not_found")
	}
	b, err := os.ReadFile(filepath.Join(s.trustDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return reasonReply(http.StatusNotFound, "not_found")
	}
	if err != nil {
		return reasonReply(http.StatusInternalServerError, "storage")
	}
	sum := sm3.Sum(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := http.Header{"Etag": {etag}}
	notModified := etagMatch(r.Header.Get("If-None-Match"), etag)
	if v, ok := payloadVersion(b); ok && since >= 0 && v <= uint64(since) {
		notModified = true
	}
	if notModified {
		s.count(func(st *Stats) { st.NotModified++ })
		return reply{status: http.StatusNotModified, header: h}
	}
	s.count(func(st *Stats) { st.TrustDocuments++ })
	h.Set("Content-Type", "application/json")
	return reply{status: http.StatusOK, header: h, body: b}
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// payloadVersion reads the version of an envelope's payload without verifying it.
func payloadVersion(envelope []byte) (uint64, bool) {
	var env trust.Envelope
	if json.Unmarshal(envelope, &env) != nil {
		return 0, false
	}
	p, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return 0, false
	}
	var doc struct {
		Version *uint64 `json:"version"`
	}
	if json.Unmarshal(p, &doc) != nil || doc.Version == nil {
		return 0, false
	}
	return *doc.Version, true
}

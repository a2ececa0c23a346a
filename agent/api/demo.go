package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// The demo kiosk page: static files only, with no data and no secret in them, so they
// are served without the token. The page takes the token from the URL fragment the
// operator opens (/demo/#token=…): a fragment is never sent to a server, so the token
// stays out of request lines, access logs and Referer headers. The page then presents
// it as a WebSocket subprotocol, where the API checks it like any other client's.
//
//go:embed demo
var demoFiles embed.FS

func demoHandler() http.Handler {
	sub, err := fs.Sub(demoFiles, "demo")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/demo/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page renders identities: it may run only its own script, talk only to this
		// API, and must not be framed by another page.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
			"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

package main

// The card application end to end: the built agent, a virtual GA 467 reader and a
// virtual ESC/POS printer on real ptys, the platform emulator on loopback, and the demo
// kiosk page in a real headless Chromium.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/idcard/vreader"
	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/internal/chromiumtest"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/escpos"
)

// evalString evaluates js on the page, within 10 s.
func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	return chromiumtest.Value(t, ctx, js, chromedp.Evaluate[string](js))
}

// applyRig is everything but the browser.
type applyRig struct {
	t      *testing.T
	sim    *platformsim.Server
	reader *vreader.Reader
	card   vreader.Profile
	vp     *vprinter.Printer
	agent  *agentProc
	api    string // http://127.0.0.1:PORT
	token  string
	state  string // the agent's state_dir
}

var listening = regexp.MustCompile(`"msg":"local API listening","addr":"([^"]+)"`)

func newApplyRig(t *testing.T) *applyRig {
	t.Helper()
	dir := t.TempDir()
	r := &applyRig{t: t}
	keys := filepath.Join(dir, "keys")
	if out, err := exec.Command(agentBin, "sim", "keys", "--out", keys).CombinedOutput(); err != nil {
		t.Fatalf("sim keys: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	r.state = state
	key, _, err := uplink.LoadOrCreateKey(filepath.Join(state, "terminal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if r.sim, err = platformsim.New(platformsim.Options{TrustDir: keys, Seed: 1,
		Terminals: map[string]*sm2sig.PublicKey{"T-1": sm2sig.Public(key)}}); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sim.Close() })
	if r.card, err = vreader.LoadProfile(filepath.Join("..", "..", "..", "configs", "profiles", "idcard-wang-zhe.yaml")); err != nil {
		t.Fatal(err)
	}
	readerLink, printerLink := filepath.Join(dir, "idcard"), filepath.Join(dir, "printer")
	// Answers split and with junk between frames: the driver must not care.
	if r.reader, err = vreader.New(vreader.Config{Link: readerLink, Faults: vreader.Faults{Split: true, Junk: true}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.reader.Close() })
	if r.vp, err = vprinter.NewPTY(vprinter.Config{Link: printerLink}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.vp.Close() })

	cfg := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`terminal_id: T-1
state_dir: %s
console: true
log: {level: info, format: json}
trust: {dir: %s}
platform: {url: %q}
api: {listen: "127.0.0.1:0"}
# The printer's status is asked at start only: tests count the bytes it receives.
# The timeout leaves room for the slow printer of the kiosk page test (2.4 s a receipt).
printer: {transport: serial, path: %s, baud: 115200, timeout: 5s, status_interval: 1h}
applications: {enabled: true, timeout: 1500ms}
devices:
  - {name: idcard, driver: idcard, idcard: {path: %s}}
`, state, keys, r.sim.URL(), printerLink, readerLink)), 0o600)
	r.agent = startAgent(t, cfg)
	r.agent.waitFor("local API listening", true, 15*time.Second)
	r.agent.mu.Lock()
	m := listening.FindStringSubmatch(r.agent.stderr.String())
	r.agent.mu.Unlock()
	if m == nil {
		t.Fatal("no API address in the log")
	}
	r.api = "http://" + m[1]
	tok, err := os.ReadFile(filepath.Join(state, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	r.token = strings.TrimSpace(string(tok))
	r.agent.waitFor(`"device":"idcard","state":"connected"`, true, 15*time.Second)
	return r
}

// place puts the card on the reader (lifting it first) and waits for its event.
func (r *applyRig) place(n int) {
	r.t.Helper()
	r.reader.Remove()
	time.Sleep(900 * time.Millisecond) // two polls without the card: the driver sees it gone
	if err := r.reader.Place(r.card.Card); err != nil {
		r.t.Fatal(err)
	}
	r.agent.waitFor(fmt.Sprintf("#%d idcard resident_id_card", n), false, 10*time.Second)
	// The console is told before the application service (subscribers are called in
	// turn): wait until the service holds this card too.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, b := r.get("/v1/applications/id-card")
		var c struct {
			Seq int `json:"seq"`
		}
		if st == 200 && json.Unmarshal(b, &c) == nil && c.Seq == n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the application service does not hold card #%d: %d %s", n, st, b)
		}
	}
}

// applicationEvents counts the card_application events on the local API.
func (r *applyRig) applicationEvents() int {
	r.t.Helper()
	st, b := r.get("/v1/events?after=0")
	var evs []struct {
		Application *struct{} `json:"application"`
	}
	if st != 200 || json.Unmarshal(b, &evs) != nil {
		r.t.Fatalf("/v1/events: %d %s", st, b)
	}
	n := 0
	for _, e := range evs {
		if e.Application != nil {
			n++
		}
	}
	return n
}

type apiAnswer struct {
	status int
	body   map[string]any
	took   time.Duration
}

func (r *applyRig) post(path string, body any) apiAnswer {
	r.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", r.api+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := apiAnswer{status: resp.StatusCode, took: time.Since(t0)}
	json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

func (r *applyRig) get(path string) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// decodeQRImage reads a QR code in an image with gozxing, an independent decoder.
func decodeQRImage(t *testing.T, pngBytes []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("gozxing: %v", err)
	}
	return res.GetText()
}

// The walk: an ID card placed on the virtual reader → confirm → consent on the
// kiosk page → the code on screen within 2 s and on the virtual printer; the printed
// bytes parsed back and rendered, and both decode to the code. The printer is slow
// (each status answer 1.2 s late: a receipt takes ≥ 2.4 s), and the code comes first:
// the receipt line says printing, then printed when the agent's "receipt" message comes.
func TestApplyForCardOnKioskPage(t *testing.T) {
	ctx := chromiumtest.Start(t, chromedp.WindowSize(1280, 1000))
	r := newApplyRig(t)

	chromiumtest.Do(t, ctx, 20*time.Second, "open the kiosk page",
		chromedp.Navigate(r.api+"/demo/#token="+r.token),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="connected"]`)),
		chromedp.Click(chromedp.CSS(`#apply-start`)),
		chromedp.WaitVisible(chromedp.CSS(`#apply[data-step="place"]`)),
	)
	r.place(1)
	chromiumtest.Do(t, ctx, 10*time.Second, "confirm the card",
		chromedp.WaitVisible(chromedp.CSS(`#apply[data-step="confirm"]`)),
	)
	shown := evalString(t, ctx, `document.getElementById("apply-card").textContent`)
	if !strings.Contains(shown, "王*") || !strings.Contains(shown, "1101**********1238") || strings.Contains(shown, r.card.Card.IDNumber) {
		t.Fatalf("confirmation shows %q", shown)
	}
	chromiumtest.Do(t, ctx, 5*time.Second, "consent",
		chromedp.Click(chromedp.CSS(`#apply-confirm`)),
		chromedp.WaitVisible(chromedp.CSS(`#apply[data-step="consent"]`)),
	)
	r.vp.SetReplyDelay(1200 * time.Millisecond)
	t0 := time.Now()
	chromiumtest.Do(t, ctx, 10*time.Second, "see the code",
		chromedp.Click(chromedp.CSS(`#apply-consent`)),
		chromedp.WaitVisible(chromedp.CSS(`#apply[data-step="done"] #apply-code`)),
	)
	took := time.Since(t0)
	code := evalString(t, ctx, `document.getElementById("apply-code").textContent`)
	if took > 2*time.Second {
		t.Errorf("the code took %s to show, want < 2 s", took)
	}
	t.Logf("code on screen %s after consent: %s", took.Round(time.Millisecond), code)
	if !regexp.MustCompile(`^[0-9A-F]{64}:1$`).MatchString(code) {
		t.Fatalf("code on screen %q", code)
	}
	if st := r.sim.Stats(); st.CardsIssued != 1 {
		t.Fatalf("platform: %+v", st)
	}
	// The receipt is still at the slow printer: the page says so, then the WebSocket
	// message turns it into "take your receipt" without the page asking.
	if st := evalString(t, ctx, `document.getElementById("apply-receipt").dataset.state`); st != "printing" {
		t.Errorf("receipt state %q on screen with the code, want printing", st)
	}
	chromiumtest.Do(t, ctx, 15*time.Second, "see the receipt printed",
		chromedp.WaitVisible(chromedp.CSS(`#apply-receipt[data-state="printed"]`)))
	printedAfter := time.Since(t0)
	if printedAfter < 2400*time.Millisecond {
		t.Errorf("receipt printed %s after consent: the slow printer was not slow", printedAfter)
	}
	t.Logf("receipt printed %s after consent", printedAfter.Round(time.Millisecond))
	if rc := evalString(t, ctx, `document.getElementById("apply-receipt").textContent`); !strings.Contains(rc, "Take your receipt") {
		t.Fatalf("receipt line %q", rc)
	}
	// The QR image on the page decodes to the code.
	chromiumtest.Do(t, ctx, 5*time.Second, "see the QR image", chromedp.WaitVisible(chromedp.CSS(`#apply-qr[src^="data:image/png"]`)))
	src := evalString(t, ctx, `document.getElementById("apply-qr").src`)
	if !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Fatalf("img src %.40q", src)
	}
	st, qrPNG := r.get("/v1/applications/" + evalString(t, ctx, `document.getElementById("apply").dataset.application`) + "/qr.png")
	if st != 200 || decodeQRImage(t, qrPNG) != code {
		t.Fatalf("qr.png: %d", st)
	}
	// The application is on the page's event log too, as the agent sent it: masked.
	chromiumtest.Do(t, ctx, 5*time.Second, "see the card_application event", chromedp.WaitVisible(chromedp.CSS(`#events tr[data-seq="2"]`)))
	row := evalString(t, ctx, `document.querySelector('#events tr[data-seq="2"]').textContent`)
	if !strings.Contains(row, "card_application") || !strings.Contains(row, "created") || !strings.Contains(row, "王*") ||
		!strings.Contains(row, "1101**********1238") || strings.Contains(row, r.card.Card.Name) || strings.Contains(row, r.card.Card.IDNumber) {
		t.Fatalf("event row %q", row)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		os.WriteFile(chromiumtest.Artifact(t, "apply-kiosk-page.png"), shot, 0o644)
	}

	// The receipt: the QR stored with GS ( k is the code, and the receipt rendered as the
	// printer prints it decodes back to the code with gozxing.
	jobs, err := r.vp.WaitJobs(ctxTimeout(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	job := jobs[0]
	if job.Err != nil {
		t.Fatalf("printed job: %v", job.Err)
	}
	if !bytes.Contains(job.Bytes, append([]byte{0x1D, 0x28, 0x6B, byte(len(code) + 3), 0, 0x31, 0x50, 0x30}, code...)) {
		t.Fatal("the printed bytes do not store the code with GS ( k")
	}
	if qrs := job.Doc.QRs(); len(qrs) != 1 || string(qrs[0].Payload) != code {
		t.Fatalf("printed QR payloads %v", qrs)
	}
	text := strings.Join(job.Doc.Texts(), "\n")
	if !strings.Contains(text, "1101**********1238") || strings.Contains(text, r.card.Card.IDNumber) || !strings.Contains(text, "T-1") {
		t.Fatalf("receipt text:\n%s", text)
	}
	var font escpos.Font
	if data, err := os.ReadFile(escpos.UnifontPath); err == nil {
		runes := job.Doc.Runes()
		font, _ = escpos.ParseHexFont(data, func(c rune) bool { return runes[c] })
	}
	receiptPNG, err := escpos.RenderPNG(job.Doc, escpos.Dots58mm, font)
	if err != nil {
		t.Fatal(err)
	}
	p := chromiumtest.Artifact(t, "apply-receipt.png")
	if err := os.WriteFile(p, receiptPNG, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("receipt rendered: %s", p)
	if got := decodeQRImage(t, receiptPNG); got != code {
		t.Fatalf("the rendered receipt decodes to %q, want %q", got, code)
	}

	r.agent.stop(5 * time.Second)
	r.agent.mu.Lock()
	defer r.agent.mu.Unlock()
	for _, pii := range []string{r.card.Card.IDNumber, r.card.Card.Name, r.card.Card.Address} {
		if strings.Contains(r.agent.stderr.String(), pii) || strings.Contains(strings.Join(r.agent.lines, "\n"), pii) {
			t.Fatalf("%q reached the agent's output unmasked", pii)
		}
	}
}

// The failure paths through the agent's API, with the same devices and platform: a lost
// answer retried, a resident who has a card, the platform down, the paper out.
func TestApplyFailurePaths(t *testing.T) {
	r := newApplyRig(t)
	consent := map[string]any{"text_version": "2026-01"}

	// The platform's first answer is lost: the agent retries with the same
	// application_id, and the platform issues one card.
	r.place(1)
	r.sim.SetFaults(platformsim.Faults{DropNext: 1, DropPath: "/api/v1/cards/apply"})
	a := r.post("/v1/applications", map[string]any{"source": "id_card_reader", "consent": consent})
	if a.status != 201 || a.body["created"] != true {
		t.Fatalf("lost answer: %d %v", a.status, a.body)
	}
	code := a.body["code"].(string)
	if st := r.sim.Stats(); st.Drops != 1 || st.CardsIssued != 1 || st.Applications != 2 {
		t.Fatalf("platform after a lost answer: %+v", st)
	}
	jobs, err := r.vp.WaitJobs(ctxTimeout(t, 5*time.Second), 1)
	if err != nil || string(jobs[0].Doc.QRs()[0].Payload) != code {
		t.Fatalf("receipt: %v", err)
	}
	// The card was used: the next application needs a card placed again.
	if a := r.post("/v1/applications", map[string]any{"source": "id_card_reader", "consent": consent}); a.status != 409 || a.body["error"] != "no_id_card" {
		t.Fatalf("without a card: %d %v", a.status, a.body)
	}

	// The same resident again: the existing card's code, created false, no new card.
	r.place(3) // seq 2 is the first application's card_application event
	a = r.post("/v1/applications", map[string]any{"source": "id_card_reader", "consent": consent})
	if a.status != 200 || a.body["created"] != false || a.body["code"] != code || r.sim.Stats().CardsIssued != 1 {
		t.Fatalf("resident with a card: %d %v", a.status, a.body)
	}

	// Manual entry with a mistyped check digit never reaches the platform.
	// (Not Stats().Requests: the uplink delivers events meanwhile. Every application
	// sent to the platform is a card_application event: none may appear.)
	before := r.applicationEvents()
	a = r.post("/v1/applications", map[string]any{"source": "manual", "consent": consent,
		"applicant": map[string]any{"id_number": "110108199003071239", "name": "王喆"}})
	if a.status != 422 || a.body["error"] != "invalid_id_number" || r.applicationEvents() != before || before != 2 {
		t.Fatalf("bad check digit: %d %v", a.status, a.body)
	}

	// Platform down: platform_unreachable once applications.timeout (1.5 s) is up,
	// nothing printed and nothing kept.
	r.sim.Down(time.Minute)
	id, _ := uuid.NewV7()
	// The second receipt has left the agent, but the virtual printer reads the pty on
	// its own time: count the bytes once it has the whole job.
	if _, err := r.vp.WaitJobs(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	printed := len(r.vp.Received())
	a = r.post("/v1/applications", map[string]any{"application_id": id.String(), "source": "manual", "consent": consent,
		"applicant": map[string]any{"id_number": "11010519491231002X", "name": "赵六"}})
	if a.status != 503 || a.body["error"] != "platform_unreachable" || a.took < 1400*time.Millisecond || a.took > 3*time.Second {
		t.Fatalf("platform down: %d %v after %s", a.status, a.body, a.took)
	}
	if st, _ := r.get("/v1/applications/" + id.String() + "/qr.png"); st != 404 {
		t.Fatalf("an unanswered application has a QR image: %d", st)
	}
	if len(r.vp.Received()) != printed || r.sim.Stats().CardsIssued != 1 {
		t.Fatal("something was printed or issued while the platform was down")
	}
	r.sim.Up()

	// Paper out: the application is answered with the receipt printing; the printer
	// says paper out, nothing is printed, and the outcome is kept for the kiosk.
	jobsBefore := len(r.vp.Jobs()) // a receipt for each answered application so far
	r.vp.SetPaperOut(true)
	a = r.post("/v1/applications", map[string]any{"source": "manual", "consent": consent,
		"applicant": map[string]any{"id_number": "11010519491231002X", "name": "赵六"}})
	rc, _ := a.body["receipt"].(map[string]any)
	if a.status != 201 || rc["state"] != "printing" {
		t.Fatalf("paper out: %d %v", a.status, a.body)
	}
	appID := a.body["application_id"].(string)
	rc = r.waitReceipt(appID, "failed")
	if rc["reason"] != "paper_out" || !strings.Contains(fmt.Sprint(rc["hint"]), "paper") {
		t.Fatalf("paper out: receipt %v", rc)
	}
	if len(r.vp.Jobs()) != jobsBefore || r.vp.Discarded() != 0 {
		t.Fatalf("printed without paper: %d jobs, %d bytes discarded", len(r.vp.Jobs()), r.vp.Discarded())
	}
	// Paper loaded: the receipt is printed again on request.
	r.vp.SetPaperOut(false)
	if a := r.post("/v1/applications/"+appID+"/receipt", nil); a.status != 200 || a.body["receipt"].(map[string]any)["state"] != "printing" {
		t.Fatalf("reprint: %d %v", a.status, a.body)
	}
	r.waitReceipt(appID, "printed")
	if _, err := r.vp.WaitJobs(ctxTimeout(t, 5*time.Second), jobsBefore+1); err != nil {
		t.Fatal(err)
	}
	r.agent.stop(5 * time.Second)
}

// waitReceipt polls GET /v1/applications/{id} until its receipt is in state, and
// returns the receipt.
func (r *applyRig) waitReceipt(id, state string) map[string]any {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st, b := r.get("/v1/applications/" + id)
		var res struct {
			Code    string         `json:"code"`
			Receipt map[string]any `json:"receipt"`
		}
		if st != 200 || json.Unmarshal(b, &res) != nil || res.Code == "" {
			r.t.Fatalf("GET /v1/applications/%s: %d %s", id, st, b)
		}
		if res.Receipt["state"] == state {
			return res.Receipt
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receipt of %s: %v, want %s", id, res.Receipt, state)
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

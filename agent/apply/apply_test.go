package apply_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/ehc-agent/ehc-agent/agent/apply"
	"github.com/ehc-agent/ehc-agent/agent/pipeline"
	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/drivers/printer"
	"github.com/ehc-agent/ehc-agent/drivers/printer/vprinter"
	"github.com/ehc-agent/ehc-agent/offline/outbox"
	"github.com/ehc-agent/ehc-agent/offline/seal"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/protocol/event"
)

const (
	terminalID = "K-0001"
	name       = "王喆"
	number     = "110108199003071238"
	address    = "北京市海淀区中关村大街27号院3号楼2单元501室"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a real platform emulator, a real uplink, a virtual printer on a real pty and
// the real printer driver.
type env struct {
	sim  *platformsim.Server
	vp   *vprinter.Printer
	svc  *apply.Service
	logs *logBuffer
	seq  uint64
	ob   *outbox.Outbox
	evs  *eventLog
	// receipts are the outcomes the service told (OnReceipt), in order.
	receipts chan told
}

type told struct {
	id string
	r  apply.Receipt
}

// waitReceipt waits for the next receipt outcome told, which must be id's.
func (e *env) waitReceipt(t *testing.T, id string, within time.Duration) apply.Receipt {
	t.Helper()
	select {
	case x := <-e.receipts:
		if x.id != id {
			t.Fatalf("receipt of %s told, want %s", x.id, id)
		}
		return x.r
	case <-time.After(within):
		t.Fatalf("no receipt outcome for %s within %s", id, within)
	}
	return apply.Receipt{}
}

// eventLog is a pipeline subscriber keeping what it was told.
type eventLog struct {
	mu sync.Mutex
	ev []*event.Event
}

func (l *eventLog) Event(e *event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

// applications returns the card_application events committed so far.
func (e *env) applications() []*event.Event {
	e.evs.mu.Lock()
	defer e.evs.mu.Unlock()
	var out []*event.Event
	for _, x := range e.evs.ev {
		if x.Application != nil {
			out = append(out, x)
		}
	}
	return out
}

func newEnv(t *testing.T, mod func(*apply.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{logs: &logBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	db, err := bbolt.Open(filepath.Join(dir, "agent.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ring, err := seal.LoadOrCreate(filepath.Join(dir, "outbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(db, ring, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A real pipeline commits the application events to the outbox.
	e.ob, e.evs = ob, &eventLog{}
	pipe := pipeline.New(pipeline.Options{TerminalID: terminalID, Logger: log}, nil, ob)
	pipe.Subscribe(e.evs)
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { defer close(pdone); pipe.Run(pctx) }()
	t.Cleanup(func() { pcancel(); <-pdone })
	key, _, err := uplink.LoadOrCreateKey(filepath.Join(dir, "terminal.key"))
	if err != nil {
		t.Fatal(err)
	}
	if e.sim, err = platformsim.New(platformsim.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	e.sim.AddTerminal(terminalID, sm2sig.Public(key))
	if err := e.sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sim.Close() })
	up, err := uplink.New(uplink.Options{URL: e.sim.URL(), TerminalID: terminalID, Key: key, Outbox: ob, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if e.vp, err = vprinter.NewPTY(vprinter.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.vp.Close() })
	p, err := printer.Open(printer.Config{Transport: printer.Serial, Path: e.vp.Path(), Baud: 115200, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	o := apply.Options{TerminalID: terminalID, Platform: up, Printer: p, Timeout: 3 * time.Second, Logger: log, Events: pipe}
	if mod != nil {
		mod(&o)
	}
	if e.svc, err = apply.New(o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.svc.Close)
	e.receipts = make(chan told, 16)
	e.svc.OnReceipt(func(id string, r apply.Receipt) {
		select {
		case e.receipts <- told{id, r}:
		default:
			t.Errorf("receipt outcome of %s not taken: too many", id)
		}
	})
	return e
}

// place is the identity event of an ID card read.
func (e *env) place() uint64 {
	e.seq++
	e.svc.Event(&event.Event{Seq: e.seq, Source: event.Source{Kind: "card", Device: "idcard", Driver: "idcard"},
		Card: &event.Card{Kind: "resident_id_card", Reader: "/dev/pts/9"},
		Identity: &event.Identity{IDType: "01", IDNumber: number, Name: name, Gender: "1", Ethnicity: "01",
			BirthDate: "19900307", Address: address, IDValidTo: "20350307"}})
	return e.seq
}

func reason(err error) string {
	var e *apply.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestApplyWithHeldCard(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"}); reason(err) != apply.ReasonNoIDCard {
		t.Fatalf("no card: %v", err)
	}
	seq := e.place()
	if c, ok := e.svc.HeldCard(); !ok || c.Seq != seq || c.Identity.Address != address {
		t.Fatalf("held card %+v %v", c, ok)
	}
	if _, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceIDCard, CardSeq: seq, ConsentVersion: ""}); reason(err) != apply.ReasonConsentRequired {
		t.Fatalf("no consent: %v", err)
	}
	if _, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceIDCard, CardSeq: seq + 5, ConsentVersion: "2026-01"}); reason(err) != apply.ReasonIDCardChanged {
		t.Fatalf("another card: %v", err)
	}
	res, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceIDCard, CardSeq: seq, ConsentVersion: "2026-01"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Code == "" || res.Receipt.State != apply.ReceiptPrinting {
		t.Fatalf("result %+v", res)
	}
	if r := e.waitReceipt(t, res.ApplicationID, 10*time.Second); r != (apply.Receipt{State: apply.ReceiptPrinted}) {
		t.Fatalf("receipt %+v", r)
	}
	jobs, err := e.vp.WaitJobs(ctxT(t, 5*time.Second), 1)
	if err != nil || jobs[0].Err != nil {
		t.Fatalf("printed: %v %+v", err, jobs)
	}
	if qrs := jobs[0].Doc.QRs(); len(qrs) != 1 || string(qrs[0].Payload) != res.Code {
		t.Fatalf("printed QR %+v, want %s", qrs, res.Code)
	}
	text := strings.Join(jobs[0].Doc.Texts(), "\n")
	if !strings.Contains(text, "1101**********1238") || !strings.Contains(text, "王*") || strings.Contains(text, number) {
		t.Fatalf("receipt text:\n%s", text)
	}
	// The card is used up: the next patient must place their own.
	if _, ok := e.svc.HeldCard(); ok {
		t.Fatal("the card is still held after the application")
	}
	// A repeat of the answered application gets the same answer, without the platform.
	before := e.sim.Stats().Applications
	again, err := e.svc.Apply(ctx, apply.Request{ApplicationID: strings.ToUpper(res.ApplicationID), Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	if err != nil || again.Code != res.Code || e.sim.Stats().Applications != before {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	png, err := e.svc.QRPNG(res.ApplicationID, 256)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("qr png: %v", err)
	}
	// The same resident again, from a new read: the card they have, created false.
	e.place()
	res2, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	if err != nil || res2.Created || res2.Code != res.Code || res2.ApplicationID == res.ApplicationID {
		t.Fatalf("second application: %+v %v", res2, err)
	}
	e.waitReceipt(t, res2.ApplicationID, 10*time.Second)
	if e.sim.Stats().CardsIssued != 1 {
		t.Fatal("two cards issued")
	}
	// Two applications went to the platform, so two card_application events; the
	// requests refused here and the repeat answered from memory made none.
	apps := e.applications()
	if len(apps) != 2 {
		t.Fatalf("%d card_application events, want 2", len(apps))
	}
	wantApplicationEvent(t, apps[0], res.ApplicationID, event.ApplicationCreated, "", res.EHCID, apply.SourceIDCard, "idcard", seq)
	wantApplicationEvent(t, apps[1], res2.ApplicationID, event.ApplicationExisting, "", res.EHCID, apply.SourceIDCard, "idcard", seq+1)
	e.wantOutboxMasked(t)
	for _, pii := range []string{name, number, address, "19900307"} {
		if strings.Contains(e.logs.String(), pii) {
			t.Fatalf("%q in the logs:\n%s", pii, e.logs.String())
		}
	}
}

func TestHeldCardForgotten(t *testing.T) {
	e := newEnv(t, func(o *apply.Options) { o.HoldFor = 300 * time.Millisecond })
	e.place()
	if _, ok := e.svc.HeldCard(); !ok {
		t.Fatal("no card held")
	}
	time.Sleep(600 * time.Millisecond)
	if _, ok := e.svc.HeldCard(); ok {
		t.Fatal("card held past HoldFor")
	}
	// A failed read forgets the card held before it.
	e.place()
	e.svc.Event(&event.Event{Seq: 99, Card: &event.Card{Kind: "resident_id_card"}})
	if _, ok := e.svc.HeldCard(); ok {
		t.Fatal("card held after another card's failed read")
	}
}

func TestManualEntry(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		a      apply.Applicant
		reason string
	}{
		{apply.Applicant{IDNumber: "110108199003071239", Name: "李四"}, apply.ReasonInvalidIDNumber},
		{apply.Applicant{IDNumber: "11010819900307123", Name: "李四"}, apply.ReasonInvalidIDNumber},
		{apply.Applicant{IDNumber: number, Name: ""}, apply.ReasonInvalidApplicant},
		{apply.Applicant{IDNumber: number, Name: "李四", Gender: "2"}, apply.ReasonInvalidApplicant},
		{apply.Applicant{IDNumber: number, Name: "李四", BirthDate: "19900308"}, apply.ReasonInvalidApplicant},
		{apply.Applicant{IDNumber: number, Name: "李四", Phone: "13800x"}, apply.ReasonInvalidApplicant},
	} {
		if _, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceManual, Applicant: tc.a, ConsentVersion: "2026-01"}); reason(err) != tc.reason {
			t.Errorf("%+v: %v, want %s", tc.a, err, tc.reason)
		}
	}
	if n := e.sim.Stats().Requests; n != 0 {
		t.Fatalf("%d requests reached the platform for invalid entries", n)
	}
	// The standard's example, typed with a lower-case x.
	res, err := e.svc.Apply(ctx, apply.Request{Source: apply.SourceManual, ConsentVersion: "2026-01",
		Applicant: apply.Applicant{IDNumber: "11010519491231002x", Name: "赵六", Phone: "13800138000"}})
	if err != nil || !res.Created {
		t.Fatalf("manual: %+v %v", res, err)
	}
	// Typed entries refused here are no event; the one sent is.
	apps := e.applications()
	if len(apps) != 1 {
		t.Fatalf("%d card_application events, want 1", len(apps))
	}
	wantApplicationEvent(t, apps[0], res.ApplicationID, event.ApplicationCreated, "", res.EHCID, apply.SourceManual, event.DeviceLocalAPI, 0)
	if a := apps[0].Application.Applicant; a.IDNumber != "1101**********002X" || a.Name != "赵*" {
		t.Fatalf("applicant %+v", a)
	}
}

// A card whose ID number the platform refuses (422): the kiosk hears the refusal and
// the event says refused, with the platform's reason.
func TestRefusedApplicationEvent(t *testing.T) {
	e := newEnv(t, nil)
	e.seq++
	e.svc.Event(&event.Event{Seq: e.seq, Source: event.Source{Kind: "card", Device: "idcard", Driver: "idcard"},
		Card: &event.Card{Kind: "resident_id_card"}, Identity: &event.Identity{IDType: "01", IDNumber: "110108199003071239", Name: name}})
	_, err := e.svc.Apply(context.Background(), apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	if reason(err) != apply.ReasonRefused {
		t.Fatalf("%v", err)
	}
	apps := e.applications()
	if len(apps) != 1 {
		t.Fatalf("%d card_application events, want 1", len(apps))
	}
	wantApplicationEvent(t, apps[0], apps[0].Application.ApplicationID, event.ApplicationRefused, "bad_id_number", "", apply.SourceIDCard, "idcard", e.seq)
	e.wantOutboxMasked(t)
}

// wantApplicationEvent checks one card_application event as the subscribers saw it.
func wantApplicationEvent(t *testing.T, ev *event.Event, id, result, why, ehcID, source, device string, cardSeq uint64) {
	t.Helper()
	a := ev.Application
	if a.ApplicationID != id || a.Result != result || a.Reason != why || a.EHCID != ehcID || a.Source != source || a.CardSeq != cardSeq {
		t.Errorf("application %+v, want %s %s %q %s %s card %d", a, id, result, why, ehcID, source, cardSeq)
	}
	if ev.Seq == 0 || len(ev.EventID) != 36 || ev.TerminalID != terminalID || ev.OccurredAt.IsZero() ||
		ev.Source != (event.Source{Kind: event.SourceApplication, Device: device, Driver: event.DriverApply}) {
		t.Errorf("event %+v", ev)
	}
	if ev.Identity != nil || ev.Card != nil || ev.Code != nil || ev.Verification != nil {
		t.Errorf("fields that do not apply: %+v", ev)
	}
	b, _ := json.Marshal(ev)
	for _, pii := range []string{name, number, "110108199003071239", "11010519491231002", "赵六", address} {
		if strings.Contains(string(b), pii) {
			t.Errorf("%s unmasked in the event: %s", pii, b)
		}
	}
}

// wantOutboxMasked: what the outbox will deliver of the application events (opened,
// as the uplink reads it) has the applicant masked.
func (e *env) wantOutboxMasked(t *testing.T) {
	t.Helper()
	recs, err := e.ob.Pending(100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if !bytes.Contains(r.JSON, []byte(`"application":`)) {
			continue
		}
		n++
		for _, pii := range []string{name, number, "110108199003071239", address} {
			if bytes.Contains(r.JSON, []byte(pii)) {
				t.Errorf("%s in the outbox: %s", pii, r.JSON)
			}
		}
	}
	if n != len(e.applications()) {
		t.Errorf("%d application events in the outbox, %d told", n, len(e.applications()))
	}
}

// Paper out: the application is answered with the receipt printing, the outcome is
// failed paper_out with nothing printed, kept and told; once paper is loaded, a
// reprint prints.
func TestPaperOut(t *testing.T) {
	e := newEnv(t, nil)
	e.vp.SetPaperOut(true)
	e.place()
	res, err := e.svc.Apply(context.Background(), apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt.State != apply.ReceiptPrinting {
		t.Fatalf("receipt in the answer %+v", res.Receipt)
	}
	r := e.waitReceipt(t, res.ApplicationID, 10*time.Second)
	if r.State != apply.ReceiptFailed || r.Reason != printer.ReasonPaperOut || !strings.Contains(r.Hint, "paper") {
		t.Fatalf("receipt %+v", r)
	}
	if got, err := e.svc.Result(res.ApplicationID); err != nil || got.Receipt != r || got.Code != res.Code {
		t.Fatalf("kept %+v %v", got, err)
	}
	if len(e.vp.Jobs()) != 0 || e.vp.Discarded() != 0 {
		t.Fatalf("something was sent to a printer without paper: %d jobs, %d discarded", len(e.vp.Jobs()), e.vp.Discarded())
	}
	e.vp.SetPaperOut(false)
	r2, err := e.svc.Reprint(context.Background(), res.ApplicationID)
	if err != nil || r2.Receipt.State != apply.ReceiptPrinting {
		t.Fatalf("reprint: %+v %v", r2, err)
	}
	if r := e.waitReceipt(t, res.ApplicationID, 10*time.Second); r.State != apply.ReceiptPrinted {
		t.Fatalf("reprinted: %+v", r)
	}
	jobs, err := e.vp.WaitJobs(ctxT(t, 5*time.Second), 1)
	if err != nil || string(jobs[0].Doc.QRs()[0].Payload) != res.Code {
		t.Fatalf("reprinted: %v", err)
	}
	if _, err := e.svc.Result("0198a3c2-0000-7000-8000-000000000000"); reason(err) != apply.ReasonUnknown {
		t.Fatalf("unknown id: %v", err)
	}
}

// A slow printer (each status answer 1 s late, as on a busy 9600-baud line) does not
// hold the answer back: the code comes while the receipt is printing, and the outcome
// is kept and told once the printer is done.
func TestAnswerBeforeSlowReceipt(t *testing.T) {
	e := newEnv(t, nil)
	e.vp.SetReplyDelay(time.Second) // two status queries: the print takes ≥ 2 s
	e.place()
	t0 := time.Now()
	res, err := e.svc.Apply(context.Background(), apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt.State != apply.ReceiptPrinting || len(e.vp.Jobs()) != 0 {
		t.Fatalf("answer %+v with %d jobs printed", res.Receipt, len(e.vp.Jobs()))
	}
	if took >= 2*time.Second {
		t.Fatalf("the answer took %s: it waited for the printer", took)
	}
	// Meanwhile the kept answer says printing too.
	if got, err := e.svc.Result(res.ApplicationID); err != nil || got.Receipt.State != apply.ReceiptPrinting {
		t.Fatalf("kept while printing: %+v %v", got, err)
	}
	r := e.waitReceipt(t, res.ApplicationID, 10*time.Second)
	done := time.Since(t0)
	if r.State != apply.ReceiptPrinted || done < 2*time.Second {
		t.Fatalf("receipt %+v after %s", r, done)
	}
	if got, err := e.svc.Result(res.ApplicationID); err != nil || got.Receipt.State != apply.ReceiptPrinted {
		t.Fatalf("kept after printing: %+v %v", got, err)
	}
	jobs, err := e.vp.WaitJobs(ctxT(t, 5*time.Second), 1)
	if err != nil || jobs[0].Err != nil || string(jobs[0].Doc.QRs()[0].Payload) != res.Code {
		t.Fatalf("printed: %v %+v", err, jobs)
	}
	t.Logf("answer after %s, receipt printed after %s", took.Round(time.Millisecond), done.Round(time.Millisecond))
}

// A hung printer: receipts queue up to the bound, the next is refused printer_busy at
// once, and Close cuts off the print in progress without waiting for the printer's
// timeout, telling nothing more.
func TestHungPrinterQueueAndClose(t *testing.T) {
	e := newEnv(t, nil)
	e.vp.SetMute(true)
	ctx := context.Background()
	manual := apply.Request{Source: apply.SourceManual, ConsentVersion: "2026-01",
		Applicant: apply.Applicant{IDNumber: "11010519491231002X", Name: "赵六"}}
	var ids []string
	for i := 0; i < 6; i++ {
		res, err := e.svc.Apply(ctx, manual)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ApplicationID)
		want := apply.ReceiptPrinting
		if i == 5 { // one printing, four queued
			want = apply.ReceiptFailed
		}
		if res.Receipt.State != want {
			t.Fatalf("application %d: receipt %+v, want %s", i, res.Receipt, want)
		}
	}
	if r, _ := e.svc.Result(ids[5]); r.Receipt.Reason != apply.ReasonPrinterBusy || r.Receipt.Hint == "" {
		t.Fatalf("sixth receipt %+v", r.Receipt)
	}
	// A reprint of a receipt still queued is not queued twice.
	if r, err := e.svc.Reprint(ctx, ids[1]); err != nil || r.Receipt.State != apply.ReceiptPrinting {
		t.Fatalf("reprint while queued: %+v %v", r, err)
	}
	// The first receipt is at the printer, waiting for its status answer.
	for deadline := time.Now().Add(5 * time.Second); !bytes.Contains(e.vp.Received(), []byte{0x10, 0x04}); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no status request reached the printer: % X", e.vp.Received())
		}
	}
	t0 := time.Now()
	e.svc.Close()
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("Close took %s: it waited for the hung printer", took)
	}
	e.svc.Close() // twice is fine
	select {
	case x := <-e.receipts:
		t.Fatalf("an outcome told after Close: %+v", x)
	case <-time.After(300 * time.Millisecond):
	}
	if len(e.vp.Jobs()) != 0 {
		t.Fatal("a hung printer printed")
	}
}

// Platform down: platform_unreachable once the timeout is up, and nothing kept — no
// answer, and the card still held for another try.
func TestPlatformDown(t *testing.T) {
	e := newEnv(t, func(o *apply.Options) { o.Timeout = 1500 * time.Millisecond })
	e.sim.Down(time.Minute)
	e.place()
	t0 := time.Now()
	_, err := e.svc.Apply(context.Background(), apply.Request{Source: apply.SourceIDCard, ConsentVersion: "2026-01"})
	took := time.Since(t0)
	if reason(err) != apply.ReasonUnreachable || took > 2500*time.Millisecond {
		t.Fatalf("%v after %s", err, took)
	}
	if len(e.vp.Jobs()) != 0 || len(e.vp.Received()) != 0 {
		t.Fatal("the printer was used")
	}
	if _, ok := e.svc.HeldCard(); !ok {
		t.Fatal("the card is forgotten: the patient cannot try again")
	}
	// The attempt is on record, masked, for the hospital's audit: no ehc_id, nothing else.
	apps := e.applications()
	if len(apps) != 1 {
		t.Fatalf("%d card_application events, want 1", len(apps))
	}
	wantApplicationEvent(t, apps[0], apps[0].Application.ApplicationID, event.ApplicationUnreachable, "", "", apply.SourceIDCard, "idcard", e.seq)
	e.wantOutboxMasked(t)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

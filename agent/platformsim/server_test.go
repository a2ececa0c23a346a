package platformsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/google/uuid"

	"github.com/ehc-agent/ehc-agent/agent/platformsim"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/ehc-agent/ehc-agent/offline/sm2sig"
	"github.com/ehc-agent/ehc-agent/offline/trust"
)

const term = "K-0001"

type client struct {
	t   *testing.T
	url string
	key *sm2.PrivateKey
	id  string
	// ts and nonce overrides for the auth tests; zero: now and fresh.
	ts    int64
	nonce string
}

type resp struct {
	status int
	header http.Header
	body   []byte
	err    error // no answer (only from try)
}

func (c *client) do(method, path, query string, body []byte, hdr ...string) resp {
	c.t.Helper()
	r := c.try(method, path, query, body, hdr...)
	if r.err != nil {
		c.t.Fatal(r.err)
	}
	return r
}

// try is do that returns a missing answer as resp.err.
func (c *client) try(method, path, query string, body []byte, hdr ...string) resp {
	c.t.Helper()
	ts := c.ts
	if ts == 0 {
		ts = time.Now().Unix()
	}
	var auth string
	if c.nonce != "" {
		sig, err := sm2sig.Sign(c.key, []byte(uplink.SignedString(method, path, query, ts, c.nonce, body)))
		if err != nil {
			c.t.Fatal(err)
		}
		auth = uplink.Authorization(c.id, ts, c.nonce, sig)
	} else {
		var err error
		if auth, err = uplink.Sign(c.key, c.id, method, path, query, ts, body); err != nil {
			c.t.Fatal(err)
		}
	}
	u := c.url + path
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return resp{err: err}
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b, nil}
}

func (r resp) reason() string {
	var a struct{ Reason string }
	json.Unmarshal(r.body, &a)
	return a.Reason
}

func start(t *testing.T, o platformsim.Options) (*platformsim.Server, *client) {
	t.Helper()
	key, _ := sm2sig.GenerateKey()
	s, err := platformsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.AddTerminal(term, sm2sig.Public(key))
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &client{t: t, url: s.URL(), key: key, id: term}
}

func ev(id, terminal string, seq int) string {
	return fmt.Sprintf(`{"event_id":%q,"terminal_id":%q,"seq":%d,"occurred_at":"2026-11-24T08:00:01.123Z","source":{"kind":"qr","device":"front","driver":"sim"}}`, id, terminal, seq)
}

func v7(t *testing.T) string {
	u, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

func batch(evs ...string) []byte { return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`) }

func TestAuthReasons(t *testing.T) {
	s, c := start(t, platformsim.Options{})
	body := batch()
	if r := c.do("POST", "/api/v1/events", "", body); r.status != 200 {
		t.Fatalf("good request: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/api/v1/events", "", body); r.status != 200 || r.header.Get("Date") == "" {
		t.Fatalf("a fresh nonce each time: %d, Date %q", r.status, r.header.Get("Date"))
	}
	check := func(name string, c *client, want string) {
		t.Helper()
		r := c.do("POST", "/api/v1/events", "", body)
		if r.status != 401 || r.reason() != want {
			t.Fatalf("%s: %d %s, want 401 %s", name, r.status, r.body, want)
		}
	}
	replay := *c
	replay.nonce = "0011223344556677"
	if r := replay.do("POST", "/api/v1/events", "", body); r.status != 200 {
		t.Fatalf("first use of a nonce: %d", r.status)
	}
	check("same nonce again", &replay, platformsim.ReasonNonceReplayed)
	stale := *c
	stale.ts = time.Now().Add(-301 * time.Second).Unix()
	check("ts 301 s old", &stale, platformsim.ReasonStaleTimestamp)
	stale.ts = time.Now().Add(310 * time.Second).Unix()
	check("ts 310 s ahead", &stale, platformsim.ReasonStaleTimestamp)
	edge := *c
	edge.ts = time.Now().Add(-290 * time.Second).Unix()
	if r := edge.do("POST", "/api/v1/events", "", body); r.status != 200 {
		t.Fatalf("ts 290 s old refused: %s", r.body)
	}
	unknown := *c
	unknown.id = "K-0404"
	check("unknown terminal", &unknown, platformsim.ReasonUnknownTerminal)
	otherKey, _ := sm2sig.GenerateKey()
	forged := *c
	forged.key = otherKey
	check("another key", &forged, platformsim.ReasonBadSignature)

	// A signature over another body, path or query is bad.
	for _, mutate := range []func(*http.Request){
		func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"events":[ ]}`))
			r.ContentLength = 14
		},
		func(r *http.Request) { r.URL.RawQuery = "x=1" },
		func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ",ts=", ", ts=", 1))
		},
	} {
		auth, _ := uplink.Sign(c.key, term, "POST", "/api/v1/events", "", time.Now().Unix(), body)
		req, _ := http.NewRequest("POST", c.url+"/api/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		mutate(req)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 401 || !strings.Contains(string(b), platformsim.ReasonBadSignature) {
			t.Fatalf("mutated request: %d %s", r.StatusCode, b)
		}
	}
	if st := s.Stats(); st.Unauthorized[platformsim.ReasonBadSignature] != 4 {
		t.Fatalf("stats %+v", st.Unauthorized)
	}
}

func TestEventsDedupAndReject(t *testing.T) {
	s, c := start(t, platformsim.Options{})
	a, b := v7(t), v7(t)
	v4 := uuid.New().String()
	r := c.do("POST", "/api/v1/events", "", batch(
		ev(a, term, 1),
		ev(strings.ToUpper(a), term, 1), // the same id in another case, same batch
		ev(b, term, 2),
		ev(v4, term, 3),
		ev(v7(t), "K-0002", 4),
		`{"event_id":"`+v7(t)+`","seq":"five"}`,
		`"not an object"`,
	))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var ans platformsim.EventsAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ans.Accepted) != fmt.Sprint([]string{a, b}) || fmt.Sprint(ans.Duplicates) != fmt.Sprint([]string{strings.ToUpper(a)}) {
		t.Fatalf("accepted %v duplicates %v", ans.Accepted, ans.Duplicates)
	}
	want := []platformsim.Rejected{{3, v4, "bad_event_id"}, {4, "", "terminal_mismatch"}, {5, "", "schema"}, {6, "", "schema"}}
	if len(ans.Rejected) != len(want) {
		t.Fatalf("rejected %+v", ans.Rejected)
	}
	for i, w := range want {
		g := ans.Rejected[i]
		if g.Index != w.Index || g.Reason != w.Reason || (w.EventID != "" && g.EventID != w.EventID) {
			t.Fatalf("rejected[%d] = %+v, want %+v", i, g, w)
		}
	}
	// The same id with other content later: a duplicate, the first content kept.
	r = c.do("POST", "/api/v1/events", "", batch(ev(a, term, 99)))
	json.Unmarshal(r.body, &ans)
	if len(ans.Duplicates) != 1 || len(ans.Accepted) != 0 {
		t.Fatalf("second content: %s", r.body)
	}
	evs := s.Events()
	if len(evs) != 2 || evs[0].Seq != 1 || s.Stats().Conflicts != 1 {
		t.Fatalf("events %+v, conflicts %d", evs, s.Stats().Conflicts)
	}
}

func TestEventsLimits(t *testing.T) {
	_, c := start(t, platformsim.Options{})
	var evs []string
	for i := 0; i < 101; i++ {
		evs = append(evs, ev(v7(t), term, i+1))
	}
	if r := c.do("POST", "/api/v1/events", "", batch(evs...)); r.status != 413 {
		t.Fatalf("101 events: %d", r.status)
	}
	if r := c.do("POST", "/api/v1/events", "", batch(evs[:100]...)); r.status != 200 {
		t.Fatalf("100 events: %d %s", r.status, r.body)
	}
	huge := batch(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	if r := c.do("POST", "/api/v1/events", "", huge); r.status != 413 {
		t.Fatalf("over 1 MiB: %d", r.status)
	}
	big := strings.Replace(ev(v7(t), term, 200), `"seq"`, `"pad":"`+strings.Repeat("y", 70<<10)+`","seq"`, 1)
	r := c.do("POST", "/api/v1/events", "", batch(big))
	if r.status != 200 || !strings.Contains(string(r.body), `"reason":"too_large"`) {
		t.Fatalf("70 KiB event: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/api/v1/events", "", []byte(`{"events":`)); r.status != 400 {
		t.Fatalf("broken JSON: %d", r.status)
	}
}

// Accepted events are journalled and dedup holds across an emulator restart.
func TestJournalSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	s, c := start(t, platformsim.Options{DataDir: data})
	a := v7(t)
	c.do("POST", "/api/v1/events", "", batch(ev(a, term, 1)))
	s.Close()
	s2, err := platformsim.New(platformsim.Options{DataDir: data, Terminals: map[string]*sm2sig.PublicKey{term: sm2sig.Public(c.key)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c.url = s2.URL()
	r := c.do("POST", "/api/v1/events", "", batch(ev(a, term, 1)))
	if !strings.Contains(string(r.body), `"duplicates":["`+a+`"]`) {
		t.Fatalf("after restart: %s", r.body)
	}
	if n := len(s2.Events()); n != 1 {
		t.Fatalf("%d events after restart", n)
	}
}

func TestTrustDocumentsETag(t *testing.T) {
	dir := t.TempDir()
	anchor, _ := sm2sig.GenerateKey()
	seal := func(p string) []byte {
		b, _ := trust.Seal([]byte(p), func(m []byte) ([]byte, error) { return sm2sig.Sign(anchor, m) })
		return b
	}
	os.WriteFile(filepath.Join(dir, trust.KeySetFile), seal(`{"version":7}`), 0o644)
	os.WriteFile(filepath.Join(dir, trust.RevocationsFile), seal(`{"version":12}`), 0o644)
	_, c := start(t, platformsim.Options{TrustDir: dir})
	r := c.do("GET", "/api/v1/trust/keyset", "", nil)
	etag := r.header.Get("ETag")
	if r.status != 200 || etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("keyset: %d etag %q", r.status, etag)
	}
	if r := c.do("GET", "/api/v1/trust/keyset", "", nil, "If-None-Match", etag); r.status != 304 || len(r.body) != 0 {
		t.Fatalf("same etag: %d", r.status)
	}
	if r := c.do("GET", "/api/v1/trust/keyset", "", nil, "If-None-Match", `"other"`); r.status != 200 {
		t.Fatalf("other etag: %d", r.status)
	}
	if r := c.do("GET", "/api/v1/trust/revocations", "since=12", nil); r.status != 304 {
		t.Fatalf("since=12 of version 12: %d", r.status)
	}
	if r := c.do("GET", "/api/v1/trust/revocations", "since=11", nil); r.status != 200 {
		t.Fatalf("since=11 of version 12: %d", r.status)
	}
	// since is part of the endpoint: a terminal without a list asks since=0, and a
	// request without it is refused as a strict platform would.
	if r := c.do("GET", "/api/v1/trust/revocations", "since=0", nil); r.status != 200 {
		t.Fatalf("since=0 of version 12: %d", r.status)
	}
	for q, reason := range map[string]string{"": "missing_since", "version=3": "missing_since", "since=": "bad_since", "since=-1": "bad_since", "since=x": "bad_since", "since=1&since=2": "bad_since"} {
		if r := c.do("GET", "/api/v1/trust/revocations", q, nil); r.status != 400 || r.reason() != reason {
			t.Fatalf("query %q: %d %s, want 400 %s", q, r.status, r.body, reason)
		}
	}
	os.WriteFile(filepath.Join(dir, trust.KeySetFile), seal(`{"version":8}`), 0o644)
	if r := c.do("GET", "/api/v1/trust/keyset", "", nil, "If-None-Match", etag); r.status != 200 || r.header.Get("ETag") == etag {
		t.Fatalf("changed file: %d, etag %s", r.status, r.header.Get("ETag"))
	}
}

func TestCardApplyIdempotent(t *testing.T) {
	_, c := start(t, platformsim.Options{})
	app := func(id, number string) []byte {
		return []byte(`{"application_id":"` + id + `","terminal_id":"` + term + `","applicant":{"id_type":"01","id_number":"` + number + `","name":"张三"},"source":"id_card_reader","consent":{"text_version":"2026-01","at":"2026-11-24T08:00:01Z"}}`)
	}
	id := v7(t)
	r1 := c.do("POST", "/api/v1/cards/apply", "", app(id, "110108199003071238"))
	r2 := c.do("POST", "/api/v1/cards/apply", "", app(id, "110108199003071238"))
	if r1.status != 201 || r2.status != 201 || !bytes.Equal(r1.body, r2.body) {
		t.Fatalf("same application twice: %d %s / %d %s", r1.status, r1.body, r2.status, r2.body)
	}
	r3 := c.do("POST", "/api/v1/cards/apply", "", app(v7(t), "110108199003071238"))
	var a, b struct {
		EHCID   string `json:"ehc_id"`
		Code    string `json:"code"`
		Created bool   `json:"created"`
	}
	json.Unmarshal(r1.body, &a)
	json.Unmarshal(r3.body, &b)
	if r3.status != 200 || b.Created || b.EHCID != a.EHCID {
		t.Fatalf("second application of the resident: %d %s", r3.status, r3.body)
	}
	r := c.do("POST", "/api/v1/codes/resolve", "", []byte(`{"code":"`+a.Code+`"}`))
	if r.status != 200 || !strings.Contains(string(r.body), "110108199003071238") {
		t.Fatalf("resolving the new card's code: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/api/v1/cards/apply", "", []byte(`{"application_id":"`+v7(t)+`","terminal_id":"`+term+`"}`)); r.status != 422 {
		t.Fatalf("no applicant: %d", r.status)
	}
	// One digit off: the check digit no longer matches.
	if r := c.do("POST", "/api/v1/cards/apply", "", app(v7(t), "110108199003071239")); r.status != 422 || !strings.Contains(string(r.body), "bad_id_number") {
		t.Fatalf("bad check digit: %d %s", r.status, r.body)
	}
}

// A resident listed in codes.json has a card: applying gets its code, created false.
// A lost answer (DropNext) is processed all the same: the retry gets the same answer.
func TestCardApplyListedResidentAndLostAnswer(t *testing.T) {
	dir := t.TempDir()
	code := "E1D1C1F0A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3BFB18:1"
	os.WriteFile(filepath.Join(dir, "codes.json"), []byte(`{"`+code+`":{"ehc_id":"A0B1","id_type":"01","id_number":"110101199001011237","name":"张三"}}`), 0o600)
	s, c := start(t, platformsim.Options{DataDir: dir})
	app := func(id, number string) []byte {
		return []byte(`{"application_id":"` + id + `","terminal_id":"` + term + `","applicant":{"id_type":"01","id_number":"` + number + `","name":"张三"},"source":"manual","consent":{"text_version":"2026-01","at":"2026-11-24T08:00:01Z"}}`)
	}
	r := c.do("POST", "/api/v1/cards/apply", "", app(v7(t), "110101199001011237"))
	if r.status != 200 || !strings.Contains(string(r.body), `"code":"`+code+`"`) || !strings.Contains(string(r.body), `"created":false`) {
		t.Fatalf("listed resident: %d %s", r.status, r.body)
	}
	s.SetFaults(platformsim.Faults{DropNext: 1})
	id := v7(t)
	if r := c.try("POST", "/api/v1/cards/apply", "", app(id, "110108199003071238")); r.err == nil {
		t.Fatalf("the first answer was not dropped: %d %s", r.status, r.body)
	}
	r = c.do("POST", "/api/v1/cards/apply", "", app(id, "110108199003071238"))
	if r.status != 201 || s.Stats().CardsIssued != 1 || s.Stats().Drops != 1 {
		t.Fatalf("retry after a lost answer: %d %s, %+v", r.status, r.body, s.Stats())
	}
}

func TestLoopbackOnly(t *testing.T) {
	s, err := platformsim.New(platformsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("0.0.0.0:0"); err == nil {
		s.Close()
		t.Fatal("listening on all interfaces")
	}
}

// A card application's event is accepted when its application object is whole; one
// without a result or applicant is a schema rejection. Personal data the platform must
// never receive is counted: an unmasked applicant, the ID card's address.
func TestApplicationEvents(t *testing.T) {
	s, c := start(t, platformsim.Options{})
	appEv := func(id string, seq int, app string) string {
		return fmt.Sprintf(`{"event_id":%q,"terminal_id":%q,"seq":%d,"occurred_at":"2026-11-24T08:00:01.123Z",`+
			`"source":{"kind":"card_application","device":"idcard","driver":"apply"},"application":%s}`, id, term, seq, app)
	}
	masked := `{"application_id":"a1","result":"created","ehc_id":"E1","source":"id_card_reader","applicant":{"id_type":"01","id_number":"1101**********1238","name":"王*"}}`
	unmasked := `{"application_id":"a2","result":"platform_unreachable","source":"manual","applicant":{"id_type":"01","id_number":"110108199003071238","name":"王喆"}}`
	noResult := `{"application_id":"a3","source":"manual","applicant":{"id_type":"01","id_number":"1101**********1238","name":"王*"}}`
	badResult := `{"application_id":"a4","result":"maybe","source":"manual","applicant":{"id_type":"01","id_number":"1101**********1238","name":"王*"}}`
	noApplicant := `{"application_id":"a5","result":"refused","source":"manual"}`
	card := fmt.Sprintf(`{"event_id":%q,"terminal_id":%q,"seq":6,"occurred_at":"2026-11-24T08:00:01.123Z",`+
		`"source":{"kind":"card","device":"idcard","driver":"idcard"},"identity":{"name":"王喆","address":"北京市"}}`, v7(t), term)
	r := c.do("POST", "/api/v1/events", "", batch(appEv(v7(t), 1, masked), appEv(v7(t), 2, unmasked),
		appEv(v7(t), 3, noResult), appEv(v7(t), 4, badResult), appEv(v7(t), 5, noApplicant), card))
	var ans platformsim.EventsAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(ans.Accepted) != 3 || len(ans.Rejected) != 3 {
		t.Fatalf("answer %s", r.body)
	}
	for i, rj := range ans.Rejected {
		if rj.Index != i+2 || rj.Reason != platformsim.RejectSchema {
			t.Errorf("rejected %+v", rj)
		}
	}
	if st := s.Stats(); st.UnmaskedApplicants != 1 || st.IDCardDetailLeaks != 1 || st.PhotoLeaks != 0 {
		t.Fatalf("leak counts %+v", st)
	}
}

// A repeat of an accepted event_id is a duplicate whatever its content: the first wins
// (PLATFORM.md, Delivery rules), so a second copy that would fail the schema, name
// another terminal or be too large is reported as a duplicate, not rejected. An entry
// whose id is unknown is still checked.
func TestDuplicateRecognisedBeforeChecks(t *testing.T) {
	s, c := start(t, platformsim.Options{MaxEventBytes: 4 << 10})
	a := v7(t)
	if r := c.do("POST", "/api/v1/events", "", batch(ev(a, term, 1))); !strings.Contains(string(r.body), `"accepted":["`+a+`"]`) {
		t.Fatalf("first copy: %d %s", r.status, r.body)
	}
	upper := strings.ToUpper(a)
	copies := []string{
		ev(a, "K-0002", 1),                          // another terminal
		`{"event_id":"` + upper + `","seq":"five"}`, // no schema, id in another case
		strings.Replace(ev(a, term, 1), `"seq"`, `"pad":"`+strings.Repeat("z", 5<<10)+`","seq"`, 1), // too large
		ev(a, term, 1), // the same content again
	}
	unknown := v7(t)
	r := c.do("POST", "/api/v1/events", "", batch(append(copies, ev(unknown, "K-0002", 2))...))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var ans platformsim.EventsAnswer
	if err := json.Unmarshal(r.body, &ans); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint([]string{a, upper, a, a}); fmt.Sprint(ans.Duplicates) != want || len(ans.Accepted) != 0 {
		t.Fatalf("duplicates %v accepted %v, want duplicates %s", ans.Duplicates, ans.Accepted, want)
	}
	if len(ans.Rejected) != 1 || ans.Rejected[0].Index != 4 || ans.Rejected[0].Reason != platformsim.RejectTerminalMismatch {
		t.Fatalf("rejected %+v, want only the unknown id of another terminal", ans.Rejected)
	}
	st := s.Stats()
	if st.Duplicates != 4 || st.Conflicts != 3 {
		t.Fatalf("duplicates %d conflicts %d, want 4 and 3 (the identical copy is no conflict)", st.Duplicates, st.Conflicts)
	}
	if evs := s.Events(); len(evs) != 1 || evs[0].Seq != 1 || strings.Contains(string(evs[0].JSON), "K-0002") {
		t.Fatalf("the first copy must stay the only one kept: %+v", evs)
	}
}

package api_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/vcard"
	"github.com/ehc-agent/ehc-agent/drivers/vcard/pcscdtest"
	"github.com/ehc-agent/ehc-agent/offline/issuer"
)

// TestSSCardThroughPCSCD: the whole agent with a pcsc device on a real pcscd, and the
// social security card of configs/profiles/card-ssc-his.yaml (its name continued in the
// 4E name extension) inserted through vpcd. /compat/v1/sscard gives the national reader
// interface's string, byte for byte, in GBK and UTF-8, and its JSON.
func TestSSCardThroughPCSCD(t *testing.T) {
	pcscd := pcscdtest.Start(t)
	dir := t.TempDir()
	if _, err := issuer.GenerateKeys(filepath.Join(dir, "keys"), issuer.GenerateOptions{}); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	token, logs := runDaemon(t, dir, fmt.Sprintf(`terminal_id: K-HIS-07
state_dir: %s
log: {level: info, format: text}
trust: {dir: %s}
api:
  listen: 127.0.0.1:%d
devices:
  - {name: desk-reader, driver: pcsc, pcsc: {reader: %q}}
`, filepath.Join(dir, "state"), filepath.Join(dir, "keys"), port, pcscd.Readers[0]), func(logs string) bool {
		return strings.Contains(logs, "readers: Virtual PCD 00 00")
	})
	h := &harness{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	get := func(query string) <-chan answer {
		c := make(chan answer, 1)
		go func() {
			t0 := time.Now()
			resp, b, err := h.try("GET", "/compat/v1/sscard"+query, map[string]string{"token": token})
			c <- answer{resp, b, err, time.Since(t0)}
		}()
		return c
	}

	// No card yet: the call waits, and the card inserted meanwhile answers it (GBK, the default).
	waiting := get("?timeout=20s")
	time.Sleep(300 * time.Millisecond)
	p, err := vcard.LoadProfile(filepath.Join("..", "..", "configs", "profiles", "card-ssc-his.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	card, err := vcard.New(p)
	if err != nil {
		t.Fatal(err)
	}
	inserted, err := vcard.Insert(context.Background(), pcscd.Addr(0), card)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inserted.Remove)
	a := wait(t, waiting).must(t, http.StatusOK)
	// The name, 阿依古丽·艾合买提江·阿不都热 + 依木 from the name extension, in GBK
	// (· is A1 A4); the reset information is the ATR after 3B 6D 00 00.
	name, _ := hex.DecodeString("B0A2D2C0B9C5C0F6A1A4B0ACBACFC2F2CCE1BDADA1A4B0A2B2BBB6BCC8C8D2C0C4BE")
	wantGBK := append([]byte("650100|650102199203150026|B12345678|650100D1560000050012A3B4C5D6E7F8|"), name...)
	wantGBK = append(wantGBK, "|0081544C978684650101932A48|3.00|20230301|20330301|K-HIS-07|Virtual PCD 00 00|"...)
	if !bytes.Equal(a.body, wantGBK) || a.resp.Header.Get("Content-Type") != "text/plain; charset=GBK" {
		t.Fatalf("GBK: %s\n% X\nwant\n% X", a.resp.Header.Get("Content-Type"), a.body, wantGBK)
	}
	t.Logf("card inserted to answer: %s", a.took)

	// The card is still in the reader: answered at once, in UTF-8 and as JSON.
	a = wait(t, get("?charset=utf-8&timeout=20s")).must(t, http.StatusOK)
	const wantUTF8 = "650100|650102199203150026|B12345678|650100D1560000050012A3B4C5D6E7F8|阿依古丽·艾合买提江·阿不都热依木|" +
		"0081544C978684650101932A48|3.00|20230301|20330301|K-HIS-07|Virtual PCD 00 00|"
	if string(a.body) != wantUTF8 || a.took > 2*time.Second {
		t.Fatalf("UTF-8 after %s: %q", a.took, a.body)
	}
	a = wait(t, get("?format=json")).must(t, http.StatusOK)
	const wantJSON = `{"IssuingAreaCode":"650100","SocialSecurityNumber":"650102199203150026","CardNumber":"B12345678",` +
		`"CardIdentificationCode":"650100D1560000050012A3B4C5D6E7F8","Name":"阿依古丽·艾合买提江·阿不都热依木",` +
		`"CardResetInfo":"0081544C978684650101932A48","SpecificationVersion":"3.00","IssuingDate":"20230301",` +
		`"ExpirationDate":"20330301","TerminalNumber":"K-HIS-07","TerminalDeviceNumber":"Virtual PCD 00 00"}` + "\n"
	if string(a.body) != wantJSON || a.resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("JSON: %s", a.body)
	}

	// Out of the reader: the next call waits for a card, and says no_card at its timeout.
	inserted.Remove()
	pcscd.WaitCard(0, false)
	for deadline := time.Now().Add(5 * time.Second); ; {
		a = wait(t, get("?timeout=0"))
		if a.err == nil && a.resp.StatusCode == http.StatusGatewayTimeout {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the card is still answered after its removal: %d %s", a.resp.StatusCode, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a = wait(t, get("?timeout=1s")).must(t, http.StatusGatewayTimeout)
	if !strings.Contains(string(a.body), `"error":"no_card"`) || a.took < 900*time.Millisecond {
		t.Fatalf("after %s: %s", a.took, a.body)
	}
	// The agent's log has the reads, never the holder.
	for _, pii := range []string{"650102199203150026", "阿依古丽", "650100D1560000050012A3B4C5D6E7F8"} {
		if strings.Contains(logs.String(), pii) {
			t.Errorf("%q reached the log", pii)
		}
	}
}

// Package fleettest runs Debian's real mosquitto for tests of the fleet: TLS with a CA
// and certificates made in the test (crypto/x509), client certificates required with
// their CN as the user name, and the ACL that docs/FLEET.md recommends, which confines
// each terminal to its own topics. Brokers listen on 127.0.0.1 only, on a free port,
// and are stopped when the test ends.
//
// Without mosquitto a test skips, except in CI (CI=true), where the install script
// (scripts/install-deps.sh) must have provided it: there it fails.
package fleettest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/agent/uplink"
)

// Operators is the CN of the operators' client certificate: it may read and write
// every topic under the prefix.
const Operators = "fleet-ops"

// Mosquitto returns the path of the mosquitto binary, or skips (fails in CI).
func Mosquitto(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed (scripts/install-deps.sh installs it); the fleet tests need a real broker")
	}
	t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the broker tests")
	return ""
}

// PKI is a test CA, the broker's certificate, and client certificates on demand, as PEM
// files in Dir.
type PKI struct {
	Dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	mu     sync.Mutex
	serial int64
}

// NewPKI makes a CA and the broker's certificate (for 127.0.0.1 and localhost).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), serial: 1}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ehc fleet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	writePEM(t, p.CAFile(), "CERTIFICATE", der)
	p.issue(t, "broker", true)
	return p
}

// CAFile is the CA certificate's file, to pin.
func (p *PKI) CAFile() string { return filepath.Join(p.Dir, "ca.pem") }

// Client returns the certificate and key files of a client certificate with CN cn,
// made at the first call.
func (p *PKI) Client(t testing.TB, cn string) (certFile, keyFile string) {
	t.Helper()
	return p.issue(t, cn, false)
}

// TLS is the client side for cn, loaded the way the agent loads its own.
func (p *PKI) TLS(t testing.TB, cn string) *tls.Config {
	t.Helper()
	cert, key := p.Client(t, cn)
	c, err := uplink.LoadTLS(p.CAFile(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *PKI) issue(t testing.TB, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	certFile, keyFile = filepath.Join(p.Dir, cn+".pem"), filepath.Join(p.Dir, cn+".key")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile
	}
	p.serial++
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kd)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ACL is the mosquitto ACL for prefix: operators (CN Operators) everything under it,
// each terminal (user = CN = terminal id) only its own topics.
func ACL(prefix string) string {
	return `# operators see and steer every terminal
user ` + Operators + `
topic readwrite ` + prefix + `/#

# a terminal (user = client certificate CN = terminal id): only its own topics
pattern write ` + prefix + `/%u/status
pattern write ` + prefix + `/%u/events
pattern write ` + prefix + `/%u/reply/#
pattern read ` + prefix + `/%u/cmd/#
`
}

// Options shape a Broker.
type Options struct {
	Prefix  string // for the ACL; "" = "ehc/test"
	Persist bool   // keep retained messages and sessions across Stop/Start
	Extra   string // more mosquitto.conf lines (max_connections, …)
}

// Broker is one mosquitto on 127.0.0.1.
type Broker struct {
	PKI  *PKI
	Port int

	t   testing.TB
	bin string
	dir string
	o   Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *lockedBuffer
}

// Start starts a broker and stops it when the test ends, showing its log if the test
// failed.
func Start(t testing.TB, p *PKI, o Options) *Broker {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = "ehc/test"
	}
	b := &Broker{PKI: p, t: t, bin: Mosquitto(t), dir: t.TempDir(), o: o}
	if err := os.WriteFile(filepath.Join(b.dir, "acl"), []byte(ACL(o.Prefix)), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	for try := 0; try < 3; try++ { // a free port can be taken between the look and mosquitto's bind
		b.Port = freePort(t)
		if err = b.Start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", tail(b.Log(), 150))
		}
	})
	return b
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL is the broker's address for fleet.Options.Broker.
func (b *Broker) URL() string { return fmt.Sprintf("mqtts://127.0.0.1:%d", b.Port) }

func (b *Broker) config() string {
	var s strings.Builder
	fmt.Fprintf(&s, "listener %d 127.0.0.1\n", b.Port)
	fmt.Fprintf(&s, "cafile %s\ncertfile %s\nkeyfile %s\n", b.PKI.CAFile(), filepath.Join(b.PKI.Dir, "broker.pem"), filepath.Join(b.PKI.Dir, "broker.key"))
	s.WriteString("require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n")
	// As docs/FLEET.md recommends: few queued commands per offline session, and no
	// Nagle delay on the broker's side (with it, a command's round trip took 45 ms
	// instead of 1.3: the reply waited for the operator's delayed ACK).
	s.WriteString("max_queued_messages 100\nset_tcp_nodelay true\n")
	fmt.Fprintf(&s, "acl_file %s\n", filepath.Join(b.dir, "acl"))
	fmt.Fprintf(&s, "persistence %t\npersistence_location %s/\n", b.o.Persist, b.dir)
	s.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nlog_timestamp_format %H:%M:%S\n")
	// Started as root, mosquitto would switch to a "mosquitto" user that cannot read
	// the test's files.
	if os.Geteuid() == 0 {
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&s, "user %s\n", u.Username)
		}
	}
	s.WriteString(b.o.Extra)
	return s.String()
}

// Start (re)starts mosquitto on the broker's port and waits until it accepts
// connections.
func (b *Broker) Start() error {
	conf := filepath.Join(b.dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(b.config()), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "-c", conf)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.mu.Lock()
	b.cmd, b.exited, b.out = cmd, exited, out
	b.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited at start:\n%s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("mosquitto did not listen within 5 s:\n%s", out.String())
}

// Stop ends mosquitto with SIGTERM (it saves its persistent state then) and waits for it.
func (b *Broker) Stop() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// PID is the running mosquitto's process id, 0 when it is stopped.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Log is what mosquitto printed since its last start.
func (b *Broker) Log() string {
	b.mu.Lock()
	out := b.out
	b.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.String()
}

// tail is the last n lines of s: a broker of a thousand clients logs thousands.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d lines before]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Package config loads and validates the agent's configuration: a YAML file, built-in
// defaults and EHC_AGENT_<KEY> environment overrides (viper), checked strictly at start.
//
// Every problem is reported with the key it concerns, in the form a user can search the
// file for ("devices[1].serial.baud: 1234567 is not a supported rate"); unknown keys are
// errors, because a misspelt key silently falling back to a default is how kiosks end up
// misconfigured for years.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/ehc-agent/ehc-agent/agent/fleet"
	"github.com/ehc-agent/ehc-agent/agent/uplink"
	"github.com/spf13/viper"
)

// Config is the whole agent configuration.
type Config struct {
	TerminalID string   `mapstructure:"terminal_id"`
	StateDir   string   `mapstructure:"state_dir"`
	Console    bool     `mapstructure:"console"`
	Log        Log      `mapstructure:"log"`
	Trust      Trust    `mapstructure:"trust"`
	Verify     Verify   `mapstructure:"verify"`
	Codes      Codes    `mapstructure:"codes"`
	Platform   Platform `mapstructure:"platform"`
	API        API      `mapstructure:"api"`
	Fleet      Fleet    `mapstructure:"fleet"`
	Printer    Printer  `mapstructure:"printer"`
	Outbox     Outbox   `mapstructure:"outbox"`
	Devices    []Device `mapstructure:"devices"`

	// Applications: card applications (PLATFORM.md), through the local API.
	Applications Applications `mapstructure:"applications"`
}

// Log selects the log format and level.
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // json | text
}

// Trust locates the pinned trust anchor and the initial trust documents.
type Trust struct {
	Dir       string        `mapstructure:"dir"`       // anchor.pub, keyset.json, revocations.json
	Staleness time.Duration `mapstructure:"staleness"` // key set older than next_update + this is stale
}

// Verify tunes offline verification (CODES.md).
type Verify struct {
	Skew            time.Duration `mapstructure:"skew"`
	DuplicateWindow time.Duration `mapstructure:"duplicate_window"`
	IssuerAllow     []uint32      `mapstructure:"issuer_allow"`
}

// Codes tunes classification.
type Codes struct {
	InsurancePatterns []string `mapstructure:"insurance_patterns"`
}

// Device is one configured device.
type Device struct {
	Name    string  `mapstructure:"name"`
	Driver  string  `mapstructure:"driver"` // serial | sim | pcsc | usbhid | idcard
	Serial  Serial  `mapstructure:"serial"`
	Framing Framing `mapstructure:"framing"`
	Trigger Trigger `mapstructure:"trigger"`
	Sim     Sim     `mapstructure:"sim"`
	PCSC    PCSC    `mapstructure:"pcsc"`
	USB     USB     `mapstructure:"usb"`
	IDCard  IDCard  `mapstructure:"idcard"`
}

// Serial is a serial port, by path or by USB ids.
type Serial struct {
	Path         string `mapstructure:"path"`
	VID          string `mapstructure:"vid"`
	PID          string `mapstructure:"pid"`
	SerialNumber string `mapstructure:"serial_number"`
	Baud         int    `mapstructure:"baud"`
	DataBits     int    `mapstructure:"data_bits"`
	Parity       string `mapstructure:"parity"`
	StopBits     string `mapstructure:"stop_bits"`
	DTR          *bool  `mapstructure:"dtr"`
	RTS          *bool  `mapstructure:"rts"`
}

// Framing says how scans are delimited on the wire (SCANNERS.md).
type Framing struct {
	Type   string        `mapstructure:"type"`   // line | idle | ssi
	Suffix string        `mapstructure:"suffix"` // cr | lf | crlf | hex bytes
	Prefix string        `mapstructure:"prefix"` // hex bytes
	AIM    *bool         `mapstructure:"aim"`    // strip and report AIM ids; default true
	Gap    time.Duration `mapstructure:"gap"`
}

// Trigger is the host trigger of a device.
type Trigger struct {
	Type  string `mapstructure:"type"`  // "" | honeywell | newland | gm65 | newland-2d | ssi | custom
	Start string `mapstructure:"start"` // custom: hex bytes
	Stop  string `mapstructure:"stop"`  // custom: hex bytes
}

// Sim is the sim driver: codes from a file (or "-" for standard input).
type Sim struct {
	File     string        `mapstructure:"file"`
	Interval time.Duration `mapstructure:"interval"`
	Repeat   bool          `mapstructure:"repeat"`
}

// defaults are the built-in values of every scalar key; they also tell viper which keys
// EHC_AGENT_<KEY> may override (EHC_AGENT_LOG_LEVEL for log.level).
var defaults = map[string]any{
	"terminal_id":                  "K-0001",
	"state_dir":                    platformDirs(runtime.GOOS, os.Getenv("ProgramData")).state,
	"console":                      false,
	"log.level":                    "info",
	"log.format":                   "json",
	"trust.dir":                    platformDirs(runtime.GOOS, os.Getenv("ProgramData")).trust,
	"trust.staleness":              7 * 24 * time.Hour,
	"verify.skew":                  30 * time.Second,
	"verify.duplicate_window":      3 * time.Second,
	"verify.issuer_allow":          []uint32{},
	"codes.insurance_patterns":     []string{},
	"platform.url":                 "",
	"platform.ca_file":             "",
	"platform.client_cert":         "",
	"platform.client_key":          "",
	"platform.terminal_key":        "",
	"platform.timeout":             uplink.DefaultTimeout,
	"platform.resolve_timeout":     uplink.DefaultResolveTimeout,
	"platform.clock_offset_limit":  uplink.DefaultClockOffsetLimit,
	"platform.trust_sync_interval": uplink.DefaultTrustSyncInterval,
	"api.listen":                   DefaultAPIListen,
	"api.token_file":               "", // "" = <state_dir>/api.token
	"api.allowed_origins":          DefaultAPIAllowedOrigins,
	"api.tls_cert":                 "",
	"api.tls_key":                  "",
	"api.ws_buffer":                DefaultAPIWSBuffer,
	"fleet.broker":                 "",
	"fleet.prefix":                 DefaultFleetPrefix,
	"fleet.ca_file":                "",
	"fleet.client_cert":            "",
	"fleet.client_key":             "",
	"fleet.command_key":            "",
	"fleet.events":                 false,
	"fleet.keepalive":              fleet.DefaultKeepAlive,
	"fleet.session_expiry":         fleet.DefaultSessionExpiry,
	"fleet.reconnect_min":          fleet.DefaultReconnectMin,
	"fleet.reconnect_max":          fleet.DefaultReconnectMax,
	"fleet.heartbeat":              fleet.DefaultHeartbeat,
	"printer.transport":            "",
	"printer.path":                 "",
	"printer.vid":                  "",
	"printer.pid":                  "",
	"printer.address":              "",
	"printer.baud":                 0, // 0 = 9600, serial only
	"printer.timeout":              DefaultPrinterTimeout,
	"printer.status_interval":      DefaultPrinterStatusInterval,
	"printer.paper_width":          DefaultPrinterPaperWidth,
	"printer.print_width":          0, // 0 = 384 dots (58 mm) / 576 (80 mm)
	"outbox.max_pending":           DefaultOutboxMaxPending,
	"outbox.retention":             DefaultOutboxRetention,

	"applications.enabled":       false,
	"applications.timeout":       uplink.DefaultApplyTimeout,
	"applications.receipt_title": "",
}

// Device defaults, applied per list element (viper has no defaults inside lists).
const (
	DefaultBaud      = 9600
	DefaultStaleGap  = 500 * time.Millisecond
	DefaultIdleGap   = 50 * time.Millisecond
	DefaultSimPacing = time.Second
)

// FieldError is one problem with one key.
type FieldError struct {
	Key     string
	Problem string
}

func (e FieldError) Error() string { return e.Key + ": " + e.Problem }

// Errors is every problem found in a configuration.
type Errors []FieldError

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads the file at path (none: defaults and environment only), applies
// environment overrides, and validates the result. The error, if any, is Errors.
func Load(path string) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("EHC_AGENT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, Errors{{Key: path, Problem: "cannot read: " + oneLine(err.Error())}}
		}
	}
	var errs Errors
	unknownKeys(v.AllSettings(), reflect.TypeOf(Config{}), "", &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return nil, decodeErrors(err)
	}
	c.applyDefaults()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// unknownKeys reports every key in m that t (a struct) has no field for.
func unknownKeys(m map[string]any, t reflect.Type, prefix string, errs *Errors) {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fields[f.Tag.Get("mapstructure")] = f.Type
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			*errs = append(*errs, FieldError{Key: prefix + k, Problem: "unknown key"})
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch val := m[k].(type) {
		case map[string]any:
			if ft.Kind() == reflect.Struct {
				unknownKeys(val, ft, prefix+k+".", errs)
			}
		case []any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, el := range val {
					if em, ok := el.(map[string]any); ok {
						unknownKeys(em, ft.Elem(), fmt.Sprintf("%s%s[%d].", prefix, k, i), errs)
					}
				}
			}
		}
	}
}

// mapstructure says "'devices[0].serial.baud' expected type 'int', got ..."; we say
// "devices[0].serial.baud: expected type 'int', got ...".
var quotedKey = regexp.MustCompile(`^(?:\* )?'([^']*)' (.*)$`)

func decodeErrors(err error) Errors {
	var errs Errors
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		if m := quotedKey.FindStringSubmatch(line); m != nil {
			errs = append(errs, FieldError{Key: m[1], Problem: m[2]})
			continue
		}
		errs = append(errs, FieldError{Key: "(config)", Problem: line})
	}
	if len(errs) == 0 {
		errs = Errors{{Key: "(config)", Problem: oneLine(err.Error())}}
	}
	return errs
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func (c *Config) applyDefaults() {
	for i := range c.Devices {
		d := &c.Devices[i]
		if d.Driver == "serial" {
			if d.Serial.Baud == 0 {
				d.Serial.Baud = DefaultBaud
			}
			if d.Serial.DataBits == 0 {
				d.Serial.DataBits = 8
			}
			if d.Serial.Parity == "" {
				d.Serial.Parity = "none"
			}
			if d.Serial.StopBits == "" {
				d.Serial.StopBits = "1"
			}
			if d.Framing.Type == "" {
				d.Framing.Type = "line"
			}
			if d.Framing.Type == "line" && d.Framing.Suffix == "" {
				d.Framing.Suffix = "cr"
			}
			if d.Framing.Gap == 0 {
				if d.Framing.Type == "idle" {
					d.Framing.Gap = DefaultIdleGap
				} else {
					d.Framing.Gap = DefaultStaleGap
				}
			}
			if d.Framing.AIM == nil {
				t := true
				d.Framing.AIM = &t
			}
		}
		if d.Driver == "sim" && d.Sim.Interval == 0 {
			d.Sim.Interval = DefaultSimPacing
		}
	}
}

// Errorf is a helper for callers that validate further (a driver's own checks).
func Errorf(key, format string, args ...any) FieldError {
	return FieldError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// AsErrors returns the configuration problems in err, if it carries any.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	if errors.As(err, &es) {
		return es, true
	}
	var fe FieldError
	if errors.As(err, &fe) {
		return Errors{fe}, true
	}
	return nil, false
}

// dirs are the built-in places of the state and the trust store.
type dirs struct{ state, trust string }

// platformDirs gives the defaults of state_dir and trust.dir: the .deb's layout on Linux
// and elsewhere, and beside the service's configuration under %ProgramData% on Windows,
// where /var/lib would name a directory on the current drive that nobody set up.
func platformDirs(goos, programData string) dirs {
	if goos != "windows" {
		return dirs{state: "/var/lib/ehc-agent", trust: "/etc/ehc-agent/trust"}
	}
	if programData == "" {
		programData = `C:\ProgramData`
	}
	base := programData + `\ehc-agent`
	return dirs{state: base + `\state`, trust: base + `\trust`}
}

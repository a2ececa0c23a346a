package config

import (
	"strings"
	"testing"
	"time"

	"github.com/ehc-agent/ehc-agent/drivers/printer"
)

func printerErrors(p *Printer) []string {
	var errs []string
	p.validate(func(key, format string, args ...any) { errs = append(errs, Errorf(key, format, args...).Error()) })
	return errs
}

func TestPrinterDefaults(t *testing.T) {
	p := Printer{Transport: "serial", Path: "/dev/ttyUSB0"}
	if errs := printerErrors(&p); len(errs) > 0 {
		t.Fatal(errs)
	}
	if p.Baud != 9600 || p.Timeout != 5*time.Second || p.PaperWidth != 58 || p.PrintWidth != 384 {
		t.Fatalf("defaults %+v", p)
	}
	p = Printer{Transport: "tcp", Address: "192.0.2.7", PaperWidth: 80}
	if errs := printerErrors(&p); len(errs) > 0 {
		t.Fatal(errs)
	}
	if p.Address != "192.0.2.7:9100" || p.PrintWidth != 576 {
		t.Fatalf("tcp defaults %+v", p)
	}
	if _, err := printer.Open(p.Driver()); err != nil {
		t.Fatalf("the driver refuses a valid configuration: %v", err)
	}
	// No printer at all is valid.
	if errs := printerErrors(&Printer{}); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestPrinterErrorsNameTheirKeys(t *testing.T) {
	for _, c := range []struct {
		p    Printer
		want string
	}{
		{Printer{Path: "/dev/usb/lp0"}, "printer.transport: missing"},
		{Printer{Transport: "usb"}, `printer.transport: "usb" is not one of serial, usblp, tcp`},
		{Printer{Transport: "serial"}, "printer.path: missing"},
		{Printer{Transport: "serial", Path: "/dev/ttyS0", VID: "0483"}, "printer.path: give a path or vid/pid, not both"},
		{Printer{Transport: "serial", VID: "483", PID: "5740"}, "printer.vid:"},
		{Printer{Transport: "serial", Path: "/dev/ttyS0", Baud: 1234}, "printer.baud: 1234 is not a supported rate"},
		{Printer{Transport: "usblp"}, "printer.path: missing"},
		{Printer{Transport: "usblp", Path: "/dev/usb/lp0", Address: "x:1"}, "printer.address:"},
		{Printer{Transport: "tcp"}, "printer.address:"},
		{Printer{Transport: "tcp", Address: "h:9100", Path: "/dev/x"}, "printer.path:"},
		{Printer{Transport: "tcp", Address: "h", Timeout: time.Millisecond}, "printer.timeout: 1ms is outside"},
		{Printer{Transport: "tcp", Address: "h", PaperWidth: 76}, "printer.paper_width: 76 is not 58 or 80"},
		{Printer{Transport: "tcp", Address: "h", PrintWidth: 576}, "printer.print_width: 576 dots is outside 128..464"},
	} {
		errs := printerErrors(&c.p)
		if len(errs) == 0 || !strings.HasPrefix(strings.Join(errs, "\n"), c.want) && !strings.Contains(strings.Join(errs, "\n"), "\n"+c.want) {
			t.Errorf("%+v: errors %q, want one starting %q", c.p, errs, c.want)
		}
	}
}

func TestApplicationsNeedPlatformAndAPI(t *testing.T) {
	check := func(c *Config) []string {
		var errs []string
		c.Applications.validate(c, func(key, format string, args ...any) { errs = append(errs, Errorf(key, format, args...).Error()) })
		return errs
	}
	c := &Config{Applications: Applications{Enabled: true}}
	errs := check(c)
	if len(errs) != 2 || !strings.Contains(errs[0], "platform.url") || !strings.Contains(errs[1], "api.listen") {
		t.Fatalf("errors %q", errs)
	}
	if c.Applications.Timeout != 5*time.Second {
		t.Fatalf("default timeout %s", c.Applications.Timeout)
	}
	c = &Config{Platform: Platform{URL: "http://127.0.0.1:1"}, API: API{Listen: "127.0.0.1:0"},
		Applications: Applications{Enabled: true, Timeout: 100 * time.Millisecond}}
	if errs := check(c); len(errs) != 1 || !strings.Contains(errs[0], "applications.timeout") {
		t.Fatalf("errors %q", errs)
	}
}

package mask

import "testing"

func TestNumber(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"110101198001011234", "1101**********1234"},
		{"1234567890125678", "1234********5678"},
		{"", ""},
		{"123", "***"},
		{"1234567", "*****67"},
		{"123456789", "1234*6789"},
	} {
		if got := Number(c.in); got != c.want {
			t.Errorf("Number(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"张三", "张*"}, {"张三丰", "张**"}, {"李", "*"}, {"", ""}, {"Wang Wei", "W*******"},
	} {
		if got := Name(c.in); got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestToken(t *testing.T) {
	id := "AEBE0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01234567891279"
	if got := Token(id); got != "AEBE…1279" {
		t.Errorf("Token = %q", got)
	}
	if got := Token("123456789"); got != "1234*6789" {
		t.Errorf("short Token = %q", got)
	}
}

package config

// PCSC is a PC/SC card reader device (CARDS.md).
type PCSC struct {
	Reader string `mapstructure:"reader"` // exact reader name, or a pattern
}

func (p *PCSC) validate(key string, bad func(key, format string, args ...any)) {
	if p.Reader == "" {
		bad(key+".reader", "missing: the card reader's name or a pattern")
	}
}

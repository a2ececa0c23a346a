package config

// Platform is the central platform the outbox delivers to (PLATFORM.md). An empty URL
// means no platform: events are committed to the outbox and wait.
type Platform struct {
	URL string `mapstructure:"url"`
}

func (p *Platform) validate(bad func(key, format string, args ...any)) {}

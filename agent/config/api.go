package config

// API is the local API for the kiosk application.
type API struct {
	Listen string `mapstructure:"listen"` // "" = off
}

func (a *API) validate(bad func(key, format string, args ...any)) {}

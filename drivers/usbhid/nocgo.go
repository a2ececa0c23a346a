//go:build !cgo

package usbhid

// Built says whether this build has USB support: without cgo there is no libusb.
const Built = false

// List reports ErrNotBuilt: this build cannot see USB devices.
func List() ([]Info, error) { return nil, ErrNotBuilt }

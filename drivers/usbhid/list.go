//go:build cgo

package usbhid

import (
	"sort"

	"github.com/google/gousb"
)

// List lists the attached USB devices other than hubs, for `ehc-agent doctor`. It only
// reads descriptors: nothing is claimed or detached. String descriptors are read where
// the device can be opened (root, or a udev rule); otherwise they stay empty.
func List() ([]Info, error) {
	ctx, err := newContext()
	if err != nil {
		return nil, err
	}
	defer ctx.Close()
	var list []Info
	// A device that cannot be opened (no permission) is still listed, by its ids.
	devs, _ := ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		if desc.Class == gousb.ClassHub {
			return false
		}
		i := Info{VID: uint16(desc.Vendor), PID: uint16(desc.Product), Bus: desc.Bus, Address: desc.Address}
		for _, c := range desc.Configs {
			for _, intf := range c.Interfaces {
				for _, alt := range intf.AltSettings {
					i.HID = i.HID || alt.Class == gousb.ClassHID
				}
			}
		}
		list = append(list, i)
		return true
	})
	for _, dev := range devs {
		for k := range list {
			if list[k].Bus == dev.Desc.Bus && list[k].Address == dev.Desc.Address {
				list[k].SerialNumber, _ = dev.SerialNumber()
				list[k].Manufacturer, _ = dev.Manufacturer()
				list[k].Product, _ = dev.Product()
			}
		}
		dev.Close()
	}
	sort.Slice(list, func(a, b int) bool {
		if list[a].Bus != list[b].Bus {
			return list[a].Bus < list[b].Bus
		}
		return list[a].Address < list[b].Address
	})
	return list, nil
}

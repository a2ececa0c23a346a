// Package usbtest builds and runs the throw-away QEMU guest in which the USB driver is
// tested on real (emulated) USB (DESIGN.md, "Virtual devices": USB): the host kernel
// here has no USB at all.
//
// The guest is Debian's kernel (kernel.sh downloads the package linux-image-amd64 depends
// on and extracts it, never installing it), booted under TCG with an initramfs built here:
// a static Go /init (guestinit) that loads the modules Modules resolved, and the guest-side
// test binary (drivers/usbhid/guesttest) with the shared libraries it needs. The guest
// reports over the serial console; lines starting "@@HOST" ask the host to act through
// QMP (type on the emulated keyboard, unplug and plug it), "@@EXIT n" ends the run.
//
// The test that runs it all is guest_test.go, built only with the usbqemu tag: make
// test-usb. It fails, never skips, when CI=true and QEMU is missing.
package usbtest

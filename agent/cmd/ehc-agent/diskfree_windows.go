package main

import "golang.org/x/sys/windows"

// diskFree returns the bytes free for this user, and the size, of the volume that
// holds path.
func diskFree(path string) (free, size uint64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, err
	}
	var avail, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &totalFree); err != nil {
		return 0, 0, err
	}
	return avail, total, nil
}

package livepatch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// TransitionAge says how long the transition of the named patch has been
// under way: the time since the kernel logged "'NAME': starting patching
// transition" (or unpatching), by the record's /dev/kmsg timestamp and
// /proc/uptime. ok is false when no such record can be read (/dev/kmsg
// needs privilege, and the kernel's log buffer may have dropped it).
func (s System) TransitionAge(patch string) (age time.Duration, ok bool) {
	f, err := os.Open(s.path("dev", "kmsg"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	// /dev/kmsg blocks at its end: read what is there now. (A regular
	// file, as in a test's tree, ends with io.EOF instead.)
	f.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	want := []string{"livepatch: '" + patch + "': starting patching transition", "livepatch: '" + patch + "': starting unpatching transition"}
	var start int64 = -1
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		// One record per read from the device; lines of records from a file.
		for _, l := range bytes.Split(buf[:n], []byte{'\n'}) {
			if len(l) == 0 || l[0] == ' ' {
				continue
			}
			if msg, usec, ok := parseKmsgRecord(l); ok && (msg == want[0] || msg == want[1]) {
				start = usec
			}
		}
		if err != nil {
			// EPIPE: records were overwritten before they were read; the
			// next read goes on with the oldest one left.
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || !isEPIPE(err) {
				break
			}
		}
	}
	if start < 0 {
		return 0, false
	}
	up, err := s.readTrim("proc", "uptime")
	if err != nil {
		return 0, false
	}
	secs, err := strconv.ParseFloat(strings.Fields(up + " 0")[0], 64)
	if err != nil {
		return 0, false
	}
	age = time.Duration(secs*float64(time.Second)) - time.Duration(start)*time.Microsecond
	return max(age, 0), true
}

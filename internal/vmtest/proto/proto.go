// Package proto is the contract between the vmtest host harness and the
// guest init: the plan the guest runs, the results it reports, and the
// framing of reports on the guest's second serial port.
//
// The console (ttyS0) carries kernel messages; reports travel on ttyS1,
// which nothing else writes to. Each report is one line
//
//	KELP1 <seq> <kind> <base64 payload> <crc32 of payload, hex>
//
// so a torn, truncated or interleaved line is detected and rejected rather
// than misread.
package proto

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"time"
)

// Guest paths fixed by the contract.
const (
	PlanPath   = "/kelp/plan.json"
	ReportTTY  = "/dev/ttyS1"
	PersistDir = "/persist"
)

// Plan is what the guest init does after boot.
type Plan struct {
	// Modules are loaded (with their dependencies from modules.dep) before
	// any step runs.
	Modules []string `json:"modules,omitempty"`
	// Disk asks the guest to mount /dev/vda (ext4) on PersistDir.
	Disk  bool   `json:"disk,omitempty"`
	Steps []Step `json:"steps"`
}

// Step is one command run by the guest through busybox sh.
type Step struct {
	Name    string        `json:"name"`
	Shell   string        `json:"shell"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// StepResult is what the guest reports for a step.
type StepResult struct {
	Name     string        `json:"name"`
	Exit     int           `json:"exit"`
	Stdout   string        `json:"stdout"`
	Stderr   string        `json:"stderr"`
	Duration time.Duration `json:"duration"`
	// Error is set when the step could not run or was killed on timeout.
	Error string `json:"error,omitempty"`
}

// Report kinds.
const (
	KindReady = "ready" // guest init started, payload: kernel release
	KindSetup = "setup" // a setup failure (module load, mount), payload: message
	KindStep  = "step"  // payload: JSON StepResult
	KindDmesg = "dmesg" // payload: kernel log
	KindDone  = "done"  // guest about to power off, payload: empty
)

// Frame is one decoded report.
type Frame struct {
	Seq     int
	Kind    string
	Payload []byte
}

const magic = "KELP1"

// Writer frames reports onto w.
type Writer struct {
	w   io.Writer
	seq int
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Send writes one report.
func (fw *Writer) Send(kind string, payload []byte) error {
	fw.seq++
	line := fmt.Sprintf("%s %d %s %s %08x\n", magic, fw.seq, kind,
		base64.StdEncoding.EncodeToString(payload), crc32.ChecksumIEEE(payload))
	_, err := io.WriteString(fw.w, line)
	return err
}

// Reader decodes reports from r.
type Reader struct {
	sc   *bufio.Scanner
	next int
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	return &Reader{sc: sc, next: 1}
}

// Next returns the next report. Lines that are not reports are skipped;
// a damaged report or a gap in the sequence is an error.
func (fr *Reader) Next() (Frame, error) {
	for fr.sc.Scan() {
		line := strings.TrimRight(fr.sc.Text(), "\r")
		if !strings.HasPrefix(line, magic+" ") {
			continue
		}
		f, err := parseFrame(line)
		if err != nil {
			return Frame{}, err
		}
		if f.Seq != fr.next {
			return Frame{}, fmt.Errorf("report %d arrived, expected %d: reports were lost", f.Seq, fr.next)
		}
		fr.next++
		return f, nil
	}
	if err := fr.sc.Err(); err != nil {
		return Frame{}, err
	}
	return Frame{}, io.EOF
}

func parseFrame(line string) (Frame, error) {
	fields := strings.Fields(line)
	if len(fields) != 5 {
		if len(fields) == 4 { // empty payload encodes to nothing
			fields = []string{fields[0], fields[1], fields[2], "", fields[3]}
		} else {
			return Frame{}, fmt.Errorf("damaged report line (%d fields)", len(fields))
		}
	}
	seq, err := strconv.Atoi(fields[1])
	if err != nil {
		return Frame{}, fmt.Errorf("damaged report line: sequence %q", fields[1])
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(fields[3])
	if err != nil {
		return Frame{}, fmt.Errorf("damaged report %d: %v", seq, err)
	}
	sum, err := strconv.ParseUint(fields[4], 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(payload) {
		return Frame{}, fmt.Errorf("damaged report %d: checksum mismatch", seq)
	}
	return Frame{Seq: seq, Kind: fields[2], Payload: payload}, nil
}

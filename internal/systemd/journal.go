package systemd

import (
	"os"
	"strconv"
	"strings"
)

// StderrIsJournal reports whether standard error goes straight to
// journald, as systemd.exec(5) describes with $JOURNAL_STREAM
// ("DEVICE:INODE" of the stream it connected). Then the log needs no
// timestamps of its own (journald adds them) and would double them
// otherwise. The check compares the stream with stderr, so a child of the
// service whose stderr was redirected does not get it wrong.
func StderrIsJournal() bool {
	return journalStream(os.Getenv("JOURNAL_STREAM"), os.Stderr)
}

func journalStream(env string, f *os.File) bool {
	d, i, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(d, 10, 64)
	ino, err2 := strconv.ParseUint(i, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fdev, fino, ok := devIno(f)
	return ok && fdev == dev && fino == ino
}

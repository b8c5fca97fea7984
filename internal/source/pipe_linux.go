package source

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// queued returns a function that tells how many bytes wait to be read
// in r's pipe or socket (FIONREAD, ioctl_tty(2) and tcp(7)), or nil when
// r has no file descriptor to ask. It is asked after every read, so it
// allocates nothing; it is for one goroutine at a time.
func queued(r io.Reader) func() (int, bool) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	q := &inq{rc: rc}
	q.ioctl = q.call
	if _, ok := q.ask(); !ok {
		return nil // a regular file, a terminal that will not say, ...
	}
	return q.ask
}

// inq asks the kernel for the bytes waiting on one descriptor. Its
// result and the function handed to Control live in it, so that a
// question allocates nothing.
type inq struct {
	rc    syscall.RawConn
	ioctl func(fd uintptr)
	n     int32
	errno syscall.Errno
}

func (q *inq) call(fd uintptr) {
	_, _, q.errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&q.n)))
}

func (q *inq) ask() (int, bool) {
	q.n, q.errno = 0, 0
	if err := q.rc.Control(q.ioctl); err != nil || q.errno != 0 {
		return 0, false
	}
	return int(q.n), true
}

// fSetPipeSz is F_SETPIPE_SZ from linux/fcntl.h (Linux 2.6.35+).
const fSetPipeSz = 1031

// growPipe asks for a pipeSize buffer when r is a pipe or FIFO. Failure
// (not a pipe, or over /proc/sys/fs/pipe-max-size) leaves it as it was.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}

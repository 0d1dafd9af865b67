package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"

	pa "github.com/asynkron/protoactor-go/actor"
)

// RemoteError is an error value that crossed a link: its Error() is the
// text of the error that was sent, and errors.Is finds in it every sentinel
// registered with RegisterError (on both sides) that errors.Is found in the
// sent error. An error whose own type is registered (RegisterType) crosses
// as that type instead.
type RemoteError struct {
	// Text is the sent error's Error().
	Text string
	// Sentinels are the registered sentinels the sent error matched, as
	// this side registered them.
	Sentinels []error
	// Names are the registered names of the sentinels the sent error
	// matched, including those this side does not know.
	Names []string
}

// Error returns the sender's error text, unchanged.
func (e *RemoteError) Error() string { return e.Text }

// Unwrap returns the sentinels, for errors.Is and errors.As.
func (e *RemoteError) Unwrap() []error { return e.Sentinels }

var (
	errRegMu sync.Mutex
	errNames = map[string]error{} // guarded by errRegMu
	errList  []namedErr           // in registration order; guarded by errRegMu
)

type namedErr struct {
	name string
	err  error
}

// RegisterError names a sentinel error so that errors.Is(received,
// sentinel) holds on the receiving side for an error that matched it on the
// sending side. Register each sentinel once, from init, with the same name
// in every binary of the tree. It panics on an empty or duplicate name, a
// nil or already registered error, or an error that is not comparable.
func RegisterError(name string, err error) {
	if name == "" || err == nil {
		panic(fmt.Sprintf("mailbox: RegisterError(%q, %v): need a name and an error", name, err))
	}
	if !reflect.TypeOf(err).Comparable() {
		panic(fmt.Sprintf("mailbox: RegisterError(%q): %T is not comparable", name, err))
	}
	errRegMu.Lock()
	defer errRegMu.Unlock()
	if _, dup := errNames[name]; dup {
		panic(fmt.Sprintf("mailbox: error name %q registered twice", name))
	}
	for _, ne := range errList {
		if ne.err == err {
			panic(fmt.Sprintf("mailbox: error %v registered twice (%q and %q)", err, ne.name, name))
		}
	}
	errNames[name] = err
	errList = append(errList, namedErr{name, err})
}

func registeredErrors() []namedErr {
	errRegMu.Lock()
	defer errRegMu.Unlock()
	return errList
}

func init() {
	for name, err := range map[string]error{
		"mailbox.ErrInvalidOption":     ErrInvalidOption,
		"mailbox.ErrAlreadyStarted":    ErrAlreadyStarted,
		"mailbox.ErrClosed":            ErrClosed,
		"mailbox.ErrPeerGone":          ErrPeerGone,
		"mailbox.ErrFrameTooLarge":     ErrFrameTooLarge,
		"mailbox.ErrProtocol":          ErrProtocol,
		"mailbox.ErrMessageTooLarge":   ErrMessageTooLarge,
		"mailbox.ErrTypeNotRegistered": ErrTypeNotRegistered,
		"mailbox.ErrUnknownType":       ErrUnknownType,
		"mailbox.ErrDecode":            ErrDecode,
		"mailbox.ErrDecodeLimit":       ErrDecodeLimit,
		"mailbox.ErrEncode":            ErrEncode,
		"mailbox.ErrQueueFull":         ErrQueueFull,
		"mailbox.ErrHandshake":         ErrHandshake,
		"mailbox.ErrHandshakeTimeout":  ErrHandshakeTimeout,
		"mailbox.ErrTypeMismatch":      ErrTypeMismatch,
		"mailbox.ErrFrameStalled":      ErrFrameStalled,
		"actor.ErrTimeout":             pa.ErrTimeout,
		"actor.ErrDeadLetter":          pa.ErrDeadLetter,
		"go:context.Canceled":          context.Canceled,
		"go:context.DeadlineExceeded":  context.DeadlineExceeded,
		"go:io.EOF":                    io.EOF,
		"go:io.ErrUnexpectedEOF":       io.ErrUnexpectedEOF,
		"go:io.ErrClosedPipe":          io.ErrClosedPipe,
		"go:os.ErrNotExist":            os.ErrNotExist,
		"go:os.ErrExist":               os.ErrExist,
		"go:os.ErrPermission":          os.ErrPermission,
		"go:os.ErrDeadlineExceeded":    os.ErrDeadlineExceeded,
		"go:os.ErrClosed":              os.ErrClosed,
		"go:errors.ErrUnsupported":     errors.ErrUnsupported,
	} {
		RegisterError(name, err)
	}
}

// appendRemoteError encodes an error as [text, [names of the registered
// sentinels it matches]].
func (e *encoder) appendRemoteError(b []byte, err error) []byte {
	var names []string
	for _, ne := range registeredErrors() {
		if errors.Is(err, ne.err) {
			names = append(names, ne.name)
		}
	}
	b = append(b, 0x92)
	b = appendStr(b, err.Error())
	b = appendArrayHeader(b, len(names))
	for _, n := range names {
		b = appendStr(b, n)
	}
	return b
}

func (d *decoder) decodeRemoteError() (any, error) {
	n, err := d.r.readArrayLen()
	if err != nil {
		return nil, err
	}
	if n != 2 {
		return nil, fmt.Errorf("remote error: array of %d, want 2", n)
	}
	text, err := d.r.readBytes()
	if err != nil {
		return nil, err
	}
	m, err := d.r.readArrayLen()
	if err != nil {
		return nil, err
	}
	if err := d.charge(int64(m) * 32); err != nil {
		return nil, err
	}
	re := &RemoteError{}
	if re.Text, err = d.string(text); err != nil {
		return nil, err
	}
	errRegMu.Lock()
	defer errRegMu.Unlock()
	for range m {
		nb, err := d.r.readBytes()
		if err != nil {
			return nil, err
		}
		name, err := d.string(nb)
		if err != nil {
			return nil, err
		}
		re.Names = append(re.Names, name)
		if s, ok := errNames[name]; ok {
			re.Sentinels = append(re.Sentinels, s)
		}
	}
	return re, nil
}

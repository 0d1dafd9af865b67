package mailbox

import "sync"

// sizers are encoders for EncodedSize, each with an empty symbol table.
var sizers = sync.Pool{New: func() any { return &sizer{enc: newEncoder(""), b: newBatch()} }}

type sizer struct {
	enc *encoder
	b   *batch
}

// EncodedSize returns how many bytes env takes on a link (its length prefix
// included) when its type name and addresses cross for the first time, which
// is the most it takes. It is for accounting what waits outside a link (a
// down link's held messages): sending encodes again. Errors are Send's
// encoding errors (ErrTypeNotRegistered, ErrEncode).
func EncodedSize(env *Envelope) (int, error) {
	s := sizers.Get().(*sizer)
	mark := s.enc.mark()
	err := s.b.appendEnvelope(s.enc, env, maxFrameLimit)
	n := s.b.lastSize
	s.enc.rollback(mark)
	s.b.reset()
	sizers.Put(s)
	if err != nil {
		return 0, err
	}
	return n, nil // a large []byte is counted, though it is never copied
}

// InReader reports whether the calling goroutine is the reader of an
// endpoint (it runs a Handler). Such a goroutine must never wait for room on
// a link: see the package doc.
func InReader() bool { return isReaderGoroutine(goid()) }

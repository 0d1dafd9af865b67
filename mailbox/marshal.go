package mailbox

import "fmt"

// Marshal encodes one value on its own, with the same rules as a message
// payload (registered types by name, protobuf messages, PIDs, basic values),
// for values that travel inside other messages or outside a link (spawn
// arguments). Unmarshal reverses it.
func Marshal(v any) ([]byte, error) {
	enc := newEncoder("")
	b, ext, err := enc.appendPayload(nil, v)
	if err != nil {
		return nil, err
	}
	return append(b, ext...), nil
}

// Unmarshal decodes a value made by Marshal. Errors wrap ErrUnknownType,
// ErrDecode or ErrProtocol.
func Unmarshal(b []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: decoder panicked: %v", ErrDecode, r)
		}
	}()
	d := newDecoder()
	c := cursor{b: b}
	kind := c.byte()
	var sym *symbol
	if kind == kindTyped || kind == kindTypedTags || kind == kindProto {
		sym = d.symbol(&c)
	}
	d.tagTable(kind, &c)
	if c.err != nil {
		return nil, c.err
	}
	return d.payload(kind, sym, c.b, false)
}

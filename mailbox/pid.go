package mailbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	pa "github.com/asynkron/protoactor-go/actor"
	"github.com/procactor/procactor/internal/names"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

func (e *encoder) appendPID(b []byte, p *pa.PID) []byte {
	b = e.appendSymbol(b, e.address(p.Address))
	b = appendString(b, p.Id)
	return binary.AppendUvarint(b, uint64(p.RequestId))
}

// futurePrefix starts the id of every protoactor future (names.FuturePrefix).
var futurePrefix = []byte(names.FuturePrefix)

func (d *decoder) pid(c *cursor) *pa.PID {
	sym := d.symbol(c)
	id := c.bytes()
	req := c.uvarint()
	if c.err != nil {
		return nil
	}
	if req > math.MaxUint32 {
		c.fail("request id %d overflows", req)
		return nil
	}
	// A future is answered once: its PID (a request's sender, an answer's
	// target) does not come again, and caching it would only make garbage.
	cache := req == 0 && len(id) <= maxCachedIDLen && !bytes.HasPrefix(id, futurePrefix)
	if cache {
		// A stream's messages mostly name the same actor: comparing with the
		// address's last PID spares the map's hash.
		if p := sym.last; p != nil && p.Id == string(id) {
			return p
		}
		if p, ok := sym.pids[string(id)]; ok {
			sym.last = p
			return p
		}
	}
	p := &pa.PID{Address: sym.s, Id: string(id), RequestId: uint32(req)}
	if cache {
		if d.cachedPIDs >= maxCachedPIDs { // bound the whole link's cache, not each address's
			for _, s := range d.syms {
				s.pids, s.last = nil, nil
			}
			d.cachedPIDs = 0
		}
		if sym.pids == nil {
			sym.pids = make(map[string]*pa.PID)
		}
		sym.pids[p.Id] = p
		sym.last = p
		d.cachedPIDs++
	}
	return p
}

// PIDs nested in msgpack values (struct fields, slices) use a hand-written
// codec: an array [address, id, requestId], or nil. Registering the value type
// makes msgpack use it for *pa.PID too (with nil handled by msgpack).
func init() {
	msgpack.Register(pa.PID{}, encodePIDValue, decodePIDValue)
}

func encodePIDValue(enc *msgpack.Encoder, v reflect.Value) error {
	var addr, id string
	var req uint32
	if v.CanAddr() {
		p := v.Addr().Interface().(*pa.PID)
		addr, id, req = p.Address, p.Id, p.RequestId
	} else {
		addr, id, req = v.FieldByName("Address").String(), v.FieldByName("Id").String(), uint32(v.FieldByName("RequestId").Uint())
	}
	if s, ok := enc.Writer().(*sink); ok && addr == nonhost && s.localAddress != "" {
		addr = s.localAddress
	}
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeString(addr); err != nil {
		return err
	}
	if err := enc.EncodeString(id); err != nil {
		return err
	}
	return enc.EncodeUint32(req)
}

func decodePIDValue(dec *msgpack.Decoder, v reflect.Value) error {
	if c, err := dec.PeekCode(); err == nil && c == msgpcode.Nil {
		return dec.DecodeNil()
	}
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("pid: array of %d, want 3", n)
	}
	addr, err := dec.DecodeString()
	if err != nil {
		return err
	}
	id, err := dec.DecodeString()
	if err != nil {
		return err
	}
	req, err := dec.DecodeUint32()
	if err != nil {
		return err
	}
	if !v.CanAddr() {
		return fmt.Errorf("pid: cannot decode into unaddressable %v", v.Type())
	}
	p := v.Addr().Interface().(*pa.PID)
	p.Address, p.Id, p.RequestId = addr, id, req
	return nil
}

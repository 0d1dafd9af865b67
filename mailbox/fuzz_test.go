package mailbox

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	pa "github.com/asynkron/protoactor-go/actor"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// frameSeeds are valid streams made by the encoder: the fuzzer mutates them.
func frameSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	batchOf := func(envs ...*Envelope) []byte {
		enc := newEncoder("node")
		b := newBatch()
		for _, env := range envs {
			if err := b.appendEnvelope(enc, env, DefaultMaxFrame); err != nil {
				panic(err)
			}
		}
		b.closeFrame()
		if len(b.extern) > 0 {
			panic("frameSeeds: extern payload")
		}
		return b.buf
	}
	target, sender := pa.NewPID("node/1", "worker"), pa.NewPID(nonhost, "$1")
	var all []*Envelope
	for _, rt := range append(roundTrips(), issueRoundTrips()...) {
		if b, ok := rt.msg.([]byte); ok && len(b) > 1024 {
			continue
		}
		env := &Envelope{Target: target, Sender: sender, Message: rt.msg}
		all = append(all, env)
		seeds["msg-"+rt.name] = batchOf(env)
	}
	seeds["batch-all"] = batchOf(all...)
	seeds["batch-interned"] = batchOf(
		&Envelope{Target: target, Message: &testPing{N: 1, Who: target}},
		&Envelope{Target: target, Sender: sender, Header: map[string]string{"k": "v"}, Message: &testPing{N: 2, Who: sender}},
		&Envelope{Lane: LaneSystem, Target: target, Message: &pa.Watch{Watcher: sender}},
		&Envelope{Lane: LaneSystem, Target: target, Message: &pa.Terminated{Who: target}},
	)
	seeds["batch-tagged"] = batchOf(
		&Envelope{Target: target, Message: []any{&rtPing{N: 1}, target, int64(2)}},
		&Envelope{Target: target, Message: &rtHolder{Any: rtPong{Text: "again"}, Err: errRTSentinel}},
		&Envelope{Target: target, Message: []any{&rtPing{N: 3}, errors.New("x")}},
	)
	seeds["types-digests"] = frame(frameTypes, appendTypeDigests(nil, currentSchema()))
	seeds["types-fields"] = frame(frameTypes, appendTypeFields(nil, currentSchema(), []string{"mailbox_test.rtHolder", "mailbox_test.ping"}))
	seeds["hello"] = frame(frameHello, appendHello(nil, &Hello{Version: 2, Schema: 42, Caps: 3, MaxFrame: 1 << 20, Address: "node/1", Incarnation: 2, Cookie: []byte("0123456789abcdef")}))
	seeds["goodbye"] = frame(frameGoodbye, nil)
	seeds["empty-data"] = frame(frameData, nil)
	return seeds
}

// FuzzFrameDecoder feeds arbitrary bytes to the frame reader and the message
// decoder, as an Endpoint's reader would: no panic, and every error typed.
func FuzzFrameDecoder(f *testing.F) {
	for _, seed := range frameSeeds() {
		f.Add(seed)
	}
	f.Fuzz(runFrameFuzz)
}

// runFrameFuzz is FuzzFrameDecoder's body.
func runFrameFuzz(t *testing.T, data []byte) {
	fr := newFrameReader(bytes.NewReader(data), 4096, 1<<20)
	dec := newDecoder()
	var env Envelope
	for {
		typ, body, owned, err := fr.next()
		if err != nil {
			if err != io.EOF && !isTyped(err, ErrProtocol, ErrFrameTooLarge) {
				t.Fatalf("frame: untyped error %v", err)
			}
			return
		}
		switch typ {
		case frameHello:
			if _, err := parseHello(body); err != nil && !errors.Is(err, ErrProtocol) {
				t.Fatalf("hello: untyped error %v", err)
			}
		case frameTypes:
			checkTypesFrame(t, body)
		case frameData:
			for len(body) > 0 {
				msg, rest, err := nextMessage(body)
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("split: untyped error %v", err)
					}
					return
				}
				body = rest
				bad, fatal := dec.decodeEnvelope(msg, owned, &env)
				if fatal != nil {
					if !errors.Is(fatal, ErrProtocol) || bad != nil {
						t.Fatalf("decode: got (bad %v, fatal %v); want fatal ErrProtocol", bad, fatal)
					}
					return
				}
				if bad != nil && !isTyped(bad, ErrDecode, ErrUnknownType) {
					t.Fatalf("decode: untyped dead-letter reason %v", bad)
				}
			}
		}
	}
}

// checkTypesFrame parses a types frame both ways: no panic, errors typed,
// and a field list compared with ours names a type and a field.
func checkTypesFrame(t *testing.T, body []byte) {
	if _, err := parseTypeDigests(body, nil); err != nil && !errors.Is(err, ErrProtocol) {
		t.Fatalf("type digests: untyped error %v", err)
	}
	fields, err := parseTypeFields(body)
	if err != nil && !errors.Is(err, ErrProtocol) {
		t.Fatalf("type fields: untyped error %v", err)
	}
	s := currentSchema()
	for name, f := range fields {
		if e := s.entries[name]; e != nil {
			if err := diffFields(name, e.leavesOf(), f); err != nil && !errors.Is(err, ErrTypeMismatch) {
				t.Fatalf("diff: untyped error %v", err)
			}
		}
	}
}

// FuzzTypes feeds arbitrary bytes to the handshake's type fingerprint
// exchange (both kinds of types frame) and to the type expression parser.
func FuzzTypes(f *testing.F) {
	for _, seed := range typesSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTypesFrame(t, data)
		if wt, err := parseTypeExpr(string(data), nil, false); err != nil && !errors.Is(err, ErrUnknownType) {
			t.Fatalf("type expression: untyped error %v", err)
		} else if err == nil && wt.typ == nil {
			t.Fatalf("type expression %q: no type", data)
		}
	})
}

func typesSeeds() map[string][]byte {
	return map[string][]byte{
		"digests":    appendTypeDigests(nil, currentSchema()),
		"fields":     appendTypeFields(nil, currentSchema(), []string{"mailbox_test.rtHolder", "mailbox_test.rtPong"}),
		"expr-map":   []byte("map[string][]*mailbox_test.rtPong"),
		"expr-array": []byte("[3]map[int]any"),
		"expr-proto": []byte("*pb:actor.Watch"),
	}
}

// FuzzHello feeds arbitrary bytes to the hello parser: no panic, errors
// typed, and what parses survives a round trip.
func FuzzHello(f *testing.F) {
	for _, h := range []Hello{
		{},
		{Version: 2, Caps: 3, MaxFrame: 1 << 20, Address: "node/1", Incarnation: 2, Cookie: NewCookie(), Schema: 0xfeedface},
		{Version: 2, MaxFrame: DefaultMaxFrame, Address: "node", Cookie: []byte("c"), Schema: currentSchema().digest},
	} {
		f.Add(appendHello(nil, &h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHello(data)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := parseHello(appendHello(nil, &h))
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("round trip: got %+v, %v; want %+v", again, err, h)
		}
	})
}

// TestFuzzCorpus checks that the committed seed corpus holds a file for
// every seed of frameSeeds and of the hello parser; with -write-corpus it
// rewrites them: go test ./mailbox -run FuzzCorpus -write-corpus
func TestFuzzCorpus(t *testing.T) {
	seeds := map[string][]byte{}
	for name, b := range frameSeeds() {
		seeds[filepath.Join("FuzzFrameDecoder", "seed-"+sanitize(name))] = b
	}
	for name, b := range typesSeeds() {
		seeds[filepath.Join("FuzzTypes", "seed-"+name)] = b
	}
	seeds[filepath.Join("FuzzHello", "seed-full")] = appendHello(nil, &Hello{Version: 2, Caps: 1<<64 - 1, MaxFrame: 1 << 20, Address: "node/1/2", Incarnation: 7, Cookie: []byte("0123456789abcdef"), Schema: 1<<64 - 1})
	seeds[filepath.Join("FuzzHello", "seed-empty")] = appendHello(nil, &Hello{})
	for rel, b := range seeds {
		path := filepath.Join("testdata", "fuzz", rel)
		if !*writeCorpus {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed %s missing from the corpus (rewrite it with -write-corpus): %v", rel, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

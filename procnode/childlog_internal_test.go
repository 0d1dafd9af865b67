package procnode

import (
	"bytes"
	"encoding/json"
	"github.com/procactor/procactor/internal/printable"
	"io"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/procactor/procactor/internal/testutil"
	"github.com/procactor/procactor/mailbox"
	"github.com/rs/zerolog"
)

// TestRelayRateLimited: a child cannot flood its parent's log: its records
// are relayed at most relayBurst per relayWindow, and the next record relayed
// after that says how many were not. The clock is the test's.
func TestRelayRateLimited(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	now := time.Unix(1000, 0)
	p.relayLimit.now = func() time.Time { return now }
	rec := []byte(`{"level":"info","message":"flood"}`)
	for range 3 * relayBurst {
		control{p}.SendUserMessage(nil, &logRecord{Level: int8(zerolog.InfoLevel), JSON: rec})
	}
	if got := strings.Count(out.String(), `"message":"flood"`); got != relayBurst {
		t.Fatalf("%d records relayed in one window; want %d", got, relayBurst)
	}
	now = now.Add(relayWindow)
	control{p}.SendUserMessage(nil, &logRecord{Level: int8(zerolog.InfoLevel), JSON: rec})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != relayBurst+2 {
		t.Fatalf("%d lines after the next window; want %d (the summary and the record)", len(lines), relayBurst+2)
	}
	summary := []byte(lines[relayBurst])
	if !bytes.Contains(summary, []byte(`"skipped":2000`)) || !bytes.Contains(summary, []byte(`"child":"n/1"`)) {
		t.Errorf("summary %s; want the %d records skipped, tagged with the child", summary, 2*relayBurst)
	}
}

// TestRelayRecordBounded: relaying a child's record costs the parent at most
// mailbox.MaxDecodeFactor times the record's size, however many fields or
// values it holds, and a record over maxRelayRecord is relayed cut to it.
// Decoded into a map[string]any (its values too), a record of many small
// values cost 35-60 times its size: a child could make its parent allocate
// gigabytes with one record within the frame limit.
//
// Not parallel: it counts the bytes the process allocates.
func TestRelayRecordBounded(t *testing.T) {
	p := &Process{address: "n/1", relay: zerolog.New(io.Discard).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	fields := func(n int) []byte {
		b := []byte(`{"level":"info","message":"m"`)
		for i := range n {
			b = append(b, `,"`+strconv.Itoa(i)+`":0`...)
		}
		return append(b, '}')
	}
	values := func(v string, n int) []byte {
		return []byte(`{"level":"info","message":"m","a":[` + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + `]}`)
	}
	for _, c := range []struct {
		name string
		rec  []byte
	}{
		{"many fields", fields(maxRelayRecord / 12)},
		{"many numbers", values("0", maxRelayRecord/3)},
		{"many empty objects", values("{}", maxRelayRecord/4)},
		{"over the limit", fields(maxRelayRecord / 4)},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p.relayLog(zerolog.InfoLevel, c.rec)
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(mailbox.MaxDecodeFactor*len(c.rec)); got > limit {
			t.Errorf("%s: relaying a record of %d bytes allocated %d bytes (%.1f×); want at most %d× its size", c.name, len(c.rec), got, float64(got)/float64(len(c.rec)), mailbox.MaxDecodeFactor)
		}
	}
}

// TestRelayRecordFields: a relayed record keeps its fields and values as
// the child wrote them (nested ones included), the parent's tags first,
// and a record over maxRelayRecord arrives cut, saying so.
func TestRelayRecordFields(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	p.relayLog(zerolog.InfoLevel, []byte(`{"level":"info","time":"t","node":"n/1","b":{"x":[1,2.5,"s"]},"a":12345678901234567890,"child":"n/1/2","message":"hello"}`))
	var got map[string]any
	d := json.NewDecoder(strings.NewReader(out.String()))
	d.UseNumber()
	if err := d.Decode(&got); err != nil {
		t.Fatalf("%s: %v", out.String(), err)
	}
	want := map[string]any{"level": "info", "child": "n/1", "kind": "k", "os_pid": json.Number("0"), "message": "hello",
		"a": json.Number("12345678901234567890"), "b": map[string]any{"x": []any{json.Number("1"), json.Number("2.5"), "s"}},
		"from": map[string]any{"child": "n/1/2"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("relayed %s; want %v", out.String(), want)
	}
	var cut testutil.SyncBuffer
	p = &Process{address: "n/1", relay: zerolog.New(&cut).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	big := []byte(`{"level":"info","message":"big","s":"` + strings.Repeat("x", maxRelayRecord) + `"}`)
	p.relayLog(zerolog.InfoLevel, big)
	line := cut.String()
	if !strings.Contains(line, `"message":"child log record cut"`) || !strings.Contains(line, `"bytes":`+strconv.Itoa(len(big))) || len(line) > maxRelayRecord+1024 {
		t.Errorf("a record of %d bytes relayed as %d bytes: %.200s; want it cut to %d, saying so", len(big), len(line), line, maxRelayRecord)
	}
}

// FuzzRelayRecord: whatever bytes a child sends as a record, relaying them
// does not panic and writes one JSON line; a JSON object's fields arrive as
// the child wrote them (those the parent owns aside), however they are
// spaced, escaped or nested.
func FuzzRelayRecord(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"a":1}`, "{\n\"a\" :\t[1, {\"b\":\"}]\\\"\"}] , \"c\":null}",
		`{"k\"ey":"v\\","e\u00e9":{"x":{"y":[[],{}]}},"n":-1.5e3,"t":true,"f":false}`,
		`{"a":1,"a":2}`, `{"message":3}`, `{"level":"x","child":{"deep":1},"from":"y"}`,
		`[1,2]`, `"s"`, `{"a":`, `not json`, ``,
		`{"message":"a\u001b[2J","k\u0007":1,"k\u0008":2,"caller":"c\u009b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		var out testutil.SyncBuffer
		p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
		p.setIdentity("k", "", nil)
		p.relayLog(zerolog.InfoLevel, rec)
		var got map[string]any
		if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
			t.Fatalf("record %q relayed as %q: %v", rec, out.String(), err)
		}
		if !utf8.ValidString(out.String()) {
			t.Fatalf("record %q relayed as %q: not UTF-8", rec, out.String())
		}
		if strings.ContainsAny(strings.TrimSuffix(out.String(), "\n"), "\r\n") {
			t.Fatalf("record %q relayed as several lines: %q", rec, out.String())
		}
		var in map[string]any
		if json.Unmarshal(rec, &in) != nil {
			return
		}
		for k, v := range in {
			switch k {
			case "level", "time", "node", "message":
				continue
			}
			if pk := printable.String(k); pk != k {
				// A name with control characters arrives with '?' for them
				// (two such names may then be one).
				if _, ok := got[pk]; !ok && !slices.Contains(relayTags, pk) {
					t.Fatalf("record %q: field %q not relayed as %q (line %s)", rec, k, pk, out.String())
				}
				continue
			}
			if c, ok := v.(string); ok && k == "caller" {
				v = printable.String(c)
			}
			where := got
			if slices.Contains(relayTags, k) {
				where, _ = got["from"].(map[string]any)
			}
			if !reflect.DeepEqual(where[k], v) {
				t.Fatalf("record %q: field %q relayed as %v; want %v (line %s)", rec, k, where[k], v, out.String())
			}
		}
	})
}

// TestRelayRecordOneLine: a relayed record is one line of the parent's log,
// however the child spaced its JSON. Values copied as written kept the
// newlines between their tokens, and a child could write a line of its own
// into its parent's log: a whole record tagged as another child.
func TestRelayRecordOneLine(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	p.relayLog(zerolog.InfoLevel, []byte("{\"message\":\"m\",\"a\":[\n{\"level\":\"error\",\"child\":\"n/9\",\"message\":\"forged\"}\r\n],\n\"b\"\n:\n{\"c\"\r:\t1}}"))
	line := strings.TrimSuffix(out.String(), "\n")
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("relayed as several lines:\n%s", out.String())
	}
	var got struct {
		A []map[string]any
		B map[string]any
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil || len(got.A) != 1 || got.A[0]["message"] != "forged" || got.B["c"] != 1.0 {
		t.Errorf("relayed %s (%v); want the values as the child wrote them", line, err)
	}
}

// TestRelayRecordUTF8: the parent's log stays UTF-8 (as JSON must be between
// systems, and as zerolog writes it) when a child's record holds bytes that
// are not: encoding/json accepts them in a string, and a value copied as
// written carried them into the parent's line.
func TestRelayRecordUTF8(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(&out).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	p.relayLog(zerolog.InfoLevel, []byte("{\"message\":\"m\",\"a\":\"bad \xff\xfe bytes\",\"b\":{\"c\":[\"\xc3\"]}}"))
	if line := out.String(); !utf8.ValidString(line) || !json.Valid([]byte(line)) || !strings.Contains(line, "\"a\":\"bad \uFFFD\uFFFD bytes\"") {
		t.Errorf("relayed %q; want valid UTF-8 JSON, the bad bytes as U+FFFD", line)
	}
}

// TestRelayRecordConsoleControlCharacters: what a parent's zerolog
// ConsoleWriter prints unquoted from a child's record (the message, field
// names, the caller) carries none of the child's control characters: an
// escape sequence (OSC 52 sets the operator's clipboard, CSI 2J clears the
// screen) or a line break would reach the terminal as written. Values the
// ConsoleWriter quotes are left as the child wrote them.
func TestRelayRecordConsoleControlCharacters(t *testing.T) {
	var out testutil.SyncBuffer
	p := &Process{address: "n/1", relay: zerolog.New(zerolog.ConsoleWriter{Out: &out, NoColor: true}).Level(zerolog.InfoLevel)}
	p.setIdentity("k", "", nil)
	p.relayLog(zerolog.InfoLevel, []byte(`{"message":"m\u001b]52;c;aGk=\u0007\nforged line","k\u001b[2J":1,"caller":"x.go:1\u009b2J","v":"\u001b[31m"}`))
	line := out.String()
	for _, c := range []string{"\x1b]", "\x1b[2J", "\x07", "\u009b"} {
		if strings.Contains(line, c) {
			t.Errorf("the console line carries %q: %q", c, line)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("the console got %d lines: %q", strings.Count(line, "\n"), line)
	}
	if !strings.Contains(line, "m?]52;c;aGk=??forged line") || !strings.Contains(line, "k?[2J=1") {
		t.Errorf("console line %q; want the message and key with '?' for each control character", line)
	}
}

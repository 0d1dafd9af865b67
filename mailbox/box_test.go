package mailbox

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

func TestCloneBoxed(t *testing.T) {
	t.Parallel()
	// Values live across collections keep their bytes; the slices taken out
	// of them behave as any []byte (cap == len: an append copies).
	const n = 20000
	kept := make([]any, 0, n)
	slices := make([][]byte, 0, n)
	for i := range n {
		src := []byte(fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte{byte(i)}, i%300)))
		v := cloneBoxed(src)
		src[0] = 'X' // the clone is a copy
		if i%2 == 0 {
			kept = append(kept, v)
		} else {
			slices = append(slices, v.([]byte)) // only the slice keeps the block
		}
		if i%1000 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	check := func(i int, b []byte) {
		want := fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte{byte(i)}, i%300))
		if string(b) != want || cap(b) != len(b) {
			t.Fatalf("value %d: got %q (cap %d); want %q (cap %d)", i, b, cap(b), want, len(want))
		}
	}
	for k, v := range kept {
		b, ok := v.([]byte)
		if !ok {
			t.Fatalf("value %d is a %T", 2*k, v)
		}
		check(2*k, b)
	}
	for k, b := range slices {
		check(2*k+1, b)
		grown := append(b, '!')
		if &grown[0] == &b[0] {
			t.Fatal("append wrote past the clone")
		}
	}
	if v := cloneBoxed(nil); v == nil || len(v.([]byte)) != 0 {
		t.Fatalf("cloneBoxed(nil) = %#v; want an empty []byte", v)
	}
}

func BenchmarkCloneBoxed(b *testing.B) {
	src := make([]byte, 64)
	b.Run("boxed", func(b *testing.B) {
		b.ReportAllocs()
		var sink any
		for range b.N {
			sink = cloneBoxed(src)
		}
		_ = sink
	})
	b.Run("clone+box", func(b *testing.B) {
		b.ReportAllocs()
		var sink any
		for range b.N {
			sink = bytes.Clone(src)
		}
		_ = sink
	})
}

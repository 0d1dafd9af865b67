package printable

import "testing"

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode": "plain text, ünïcode",
		"a\nb\r\tc":           "a?b??c",
		"\x1b]52;c;aGk=\x07":  "?]52;c;aGk=?",
		"\u009b2J":            "?2J", // C1 control (CSI)
		"bad \xff\xfe bytes":  "bad \uFFFD\uFFFD bytes",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q; want %q", in, got, want)
		}
	}
}

package printable

import (
	"strings"
	"unicode"
)

// String returns s with every control character (newlines and escapes
// among them) as '?' and every byte that is not UTF-8 as U+FFFD.
func String(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r // strings.Map writes an invalid byte's RuneError as U+FFFD
	}, s)
}

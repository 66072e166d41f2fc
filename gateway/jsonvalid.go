package gateway

import "encoding/binary"

// maxJSONDepth is the deepest nesting of arrays and objects a valid
// document may have: encoding/json's limit, so that validJSON and
// json.Valid agree.
const maxJSONDepth = 10000

// validJSON reports whether doc is one JSON value with nothing but
// whitespace around it, exactly as json.Valid does (a differential fuzz
// test holds the two together), but faster on what a request body is
// mostly made of: the long strings of a prompt, which it checks eight
// bytes at a time. Like json.Valid, it does not check that strings are
// valid UTF-8.
func validJSON(doc []byte) bool {
	var buf [32]byte
	open := buf[:0] // the open arrays and objects, innermost last: '[' or '{'
	i := skipSpace(doc, 0)
	for {
		// A value starts at i.
		if i == len(doc) {
			return false
		}
		switch c := doc[i]; {
		case c == '{' || c == '[':
			var empty bool
			if i, open, empty = enter(doc, i, open); !empty && i >= 0 {
				continue // the container's first value starts at i
			}
		case c == '"':
			i = stringBody(doc, i+1)
		case c == '-' || c >= '0' && c <= '9':
			i = number(doc, i)
		default:
			i = literal(doc, i)
		}
		if i < 0 {
			return false
		}
		// After a value: the end of the document, of its container, or
		// the next element of the container.
		for {
			i = skipSpace(doc, i)
			if len(open) == 0 {
				return i == len(doc)
			}
			if i == len(doc) {
				return false
			}
			top := open[len(open)-1]
			if doc[i] == top+2 { // the container ends
				open = open[:len(open)-1]
				i++
				continue
			}
			if doc[i] != ',' {
				return false
			}
			i = skipSpace(doc, i+1)
			if top == '{' {
				if i = memberName(doc, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// enter opens the array or object at i. It returns where the container's
// first value starts, with the container pushed on open; or, for an empty
// container, where it ends, open as it was, and true; or -1 for a
// container nested too deep or a member name that is not valid.
func enter(doc []byte, i int, open []byte) (int, []byte, bool) {
	c := doc[i]
	if len(open) == maxJSONDepth {
		return -1, open, false
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == c+2 { // '}' or ']': empty
		return i + 1, open, true
	}
	if c == '{' {
		i = memberName(doc, i)
	}
	return i, append(open, c), false
}

// memberName checks a member's name and its colon at i, and returns where
// the member's value starts (after whitespace), or -1.
func memberName(doc []byte, i int) int {
	if i == len(doc) || doc[i] != '"' {
		return -1
	}
	if i = stringBody(doc, i+1); i < 0 {
		return -1
	}
	if i = skipSpace(doc, i); i == len(doc) || doc[i] != ':' {
		return -1
	}
	return skipSpace(doc, i+1)
}

// The SWAR masks of stringBody: a byte's low and high bits, in each byte.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// stringBody checks the rest of a string whose opening quote is just
// before i, and returns the index just past its closing quote, or -1. A
// string holds no byte below 0x20, and a backslash starts one of JSON's
// escapes.
func stringBody(doc []byte, i int) int {
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control byte: (x - lowBits*n) &^ x & highBits is non-zero iff a
		// byte of x is below n, and a byte equal to b is one of x^(lowBits*b)
		// below 1.
		for ; i+8 <= len(doc); i += 8 {
			x := binary.LittleEndian.Uint64(doc[i:])
			q, b := x^(lowBits*'"'), x^(lowBits*'\\')
			if ((x-lowBits*0x20)&^x|(q-lowBits)&^q|(b-lowBits)&^b)&highBits != 0 {
				break
			}
		}
		if i == len(doc) {
			return -1
		}
		switch c := doc[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i = escape(doc, i+1); i < 0 {
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
}

// escape checks the escape whose backslash is just before i, and returns
// the index just past it, or -1.
func escape(doc []byte, i int) int {
	if i == len(doc) {
		return -1
	}
	switch doc[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1
	case 'u':
		if i+5 > len(doc) {
			return -1
		}
		for _, h := range doc[i+1 : i+5] {
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				return -1
			}
		}
		return i + 5
	}
	return -1
}

// number checks the number that starts at i (a minus or a digit), and
// returns the index just past it, or -1: an optional minus, 0 or digits
// not starting with 0, an optional fraction, an optional exponent.
func number(doc []byte, i int) int {
	if doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case i < len(doc) && doc[i] >= '1' && doc[i] <= '9':
		i = digits(doc, i)
	default:
		return -1
	}
	if i < len(doc) && doc[i] == '.' {
		if i+1 == len(doc) || !isDigit(doc[i+1]) {
			return -1
		}
		i = digits(doc, i+1)
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		if i == len(doc) || !isDigit(doc[i]) {
			return -1
		}
		i = digits(doc, i)
	}
	return i
}

// digits returns the index of the first byte at or after i that is not a
// decimal digit.
func digits(doc []byte, i int) int {
	for i < len(doc) && isDigit(doc[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// literal checks for true, false or null at i, and returns the index just
// past it, or -1.
func literal(doc []byte, i int) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(doc)-i >= len(lit) && string(doc[i:i+len(lit)]) == lit {
			return i + len(lit)
		}
	}
	return -1
}

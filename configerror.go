package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem with a config or with the arguments of
// [NewProviderPool], at its place: a path such as
// targets["gpt-4o"].providers[1].url, or "config" for the whole file.
// ParseConfig, NewRegistry, Reload and NewProviderPool report every problem
// they find, each as a *FieldError, joined into one error; find them with
// errors.As, or range over the Unwrap() []error of the joined error.
type FieldError struct {
	// Place is where the problem is.
	Place string
	// Message says what is wrong and what is wanted instead. It never
	// holds a key.
	Message string

	unknown bool     // an unknown field, which lenient parsing turns into a warning
	at      []string // the JSON path that orders it in the file, when not Place's
}

// Error returns "pool: PLACE: MESSAGE".
func (e *FieldError) Error() string { return "pool: " + e.Place + ": " + e.Message }

// fieldErr makes a FieldError.
func fieldErr(place, format string, args ...any) *FieldError {
	return &FieldError{Place: placeOrTop(place), Message: fmt.Sprintf(format, args...)}
}

// ConfigWarning is something in a config that loads but may not do what its
// author meant, such as a pool with no providers (every request to it gets a
// 503) or a redirect to an alias the file does not define. ParseConfig
// lists them in Config.Warnings; log them when a config is loaded.
type ConfigWarning struct {
	// Place is where the config says it, as in FieldError.
	Place string
	// Message says what happens at request time.
	Message string
}

// String returns "PLACE: MESSAGE".
func (w ConfigWarning) String() string { return w.Place + ": " + w.Message }

// joinFieldErrors returns the problems as one error, or nil for none.
func joinFieldErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// inFileOrder sorts problems by where their places appear in data, so that
// one error lists them as a reader of the file meets them.
func inFileOrder(data []byte, errs []*FieldError) {
	offs := placeOffsets(data)
	offset := func(e *FieldError) int64 {
		segs := e.at
		if segs == nil {
			segs = placeSegments(e.Place)
		}
		for n := len(segs); n > 0; n-- {
			if off, ok := offs[strings.Join(segs[:n], "\x00")]; ok {
				return off
			}
		}
		return 0
	}
	slices.SortStableFunc(errs, func(a, b *FieldError) int { return int(offset(a) - offset(b)) })
}

// placeOffsets maps the path of every value in a JSON document (its object
// keys and array indexes, joined with NUL) to where it starts.
func placeOffsets(data []byte) map[string]int64 {
	offs := make(map[string]int64)
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func(path []string) bool
	walk = func(path []string) bool {
		offs[strings.Join(path, "\x00")] = dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return false
				}
				if !walk(append(path, fmt.Sprint(key))) {
					return false
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if !walk(append(path, strconv.Itoa(i))) {
					return false
				}
			}
			_, err = dec.Token()
		}
		return err == nil
	}
	walk(nil)
	return offs
}

// placeSegments splits a place such as targets["a"].providers[1].url into
// its keys and indexes: targets, a, providers, 1, url.
func placeSegments(place string) []string {
	var segs []string
	for place != "" {
		switch {
		case place[0] == '.':
			place = place[1:]
		case strings.HasPrefix(place, `["`):
			q, err := strconv.QuotedPrefix(place[1:])
			if err != nil {
				return segs
			}
			key, _ := strconv.Unquote(q)
			segs = append(segs, key)
			place = strings.TrimPrefix(place[1+len(q):], "]")
		case place[0] == '[':
			end := strings.IndexByte(place, ']')
			if end < 0 {
				return segs
			}
			segs = append(segs, place[1:end])
			place = place[end+1:]
		default:
			end := strings.IndexAny(place, ".[")
			if end < 0 {
				end = len(place)
			}
			segs = append(segs, place[:end])
			place = place[end:]
		}
	}
	return segs
}

// placeOrTop names the top of the file "config", where a place is empty.
func placeOrTop(place string) string {
	if place == "" {
		return "config"
	}
	return place
}

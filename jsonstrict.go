package pool

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// This file checks a JSON document against the Go types it will be decoded
// into, before it is decoded, so that every unknown field and every value of
// the wrong type is reported with its place (targets["gpt-4o"].providers[1].weight)
// rather than encoding/json's first error, which names neither map keys nor
// indexes and ignores unknown fields.

var (
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkJSON appends to errs a problem for each field of raw that t does not
// define and each value that does not fit its Go type. place is the path to
// raw ("" at the top). Types that need a special walk are handled by special,
// which returns false for the others.
func checkJSON(place string, raw json.RawMessage, t reflect.Type, errs *[]*FieldError,
	special func(place string, raw json.RawMessage, t reflect.Type, errs *[]*FieldError) bool) {
	if isNull(raw) || t == rawMessageType {
		return
	}
	if special != nil && special(place, raw, t, errs) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(jsonUnmarshalerType) || pt.Implements(textUnmarshalerType) {
		checkLeaf(place, raw, t, errs)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			*errs = append(*errs, fieldErr(place, "want an object, got %s", jsonKind(raw)))
			return
		}
		fields := jsonFields(t)
		for _, name := range sortedKeys(obj) {
			ft, ok := fields[name]
			if !ok {
				e := fieldErr(place, "unknown field %q", name)
				e.unknown, e.at = true, append(placeSegments(place), name)
				*errs = append(*errs, e)
				continue
			}
			checkJSON(joinField(place, name), obj[name], ft, errs, special)
		}
	case reflect.Slice:
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			*errs = append(*errs, fieldErr(place, "want an array, got %s", jsonKind(raw)))
			return
		}
		for i, elem := range arr {
			checkJSON(fmt.Sprintf("%s[%d]", place, i), elem, t.Elem(), errs, special)
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			*errs = append(*errs, fieldErr(place, "want an object, got %s", jsonKind(raw)))
			return
		}
		for _, k := range sortedKeys(obj) {
			checkJSON(fmt.Sprintf("%s[%q]", place, k), obj[k], t.Elem(), errs, special)
		}
	default:
		checkLeaf(place, raw, t, errs)
	}
}

// checkLeaf decodes raw into a new value of type t and reports a failure.
func checkLeaf(place string, raw json.RawMessage, t reflect.Type, errs *[]*FieldError) {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		*errs = append(*errs, fieldErr(place, "want %s, got %s", goKind(t), jsonKind(raw)))
	default:
		*errs = append(*errs, fieldErr(place, "%v", err))
	}
}

// jsonFields maps the JSON names of t's fields to their types, including the
// fields of embedded structs, as encoding/json promotes them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// jsonKind names the kind of a JSON value, for errors; it never repeats the
// value, which may be a secret.
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// goKind says what JSON a Go type takes, for errors.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// joinField is the place of field name of the object at place.
func joinField(place, name string) string {
	if place == "" {
		return name
	}
	return place + "." + name
}

// sortedKeys returns the keys of m in order, so that every walk over a
// config map, and so its errors, comes out the same each time.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

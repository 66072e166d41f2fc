package pool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// ParseOptions are the options of [ParseOptions.Parse]. The zero value is
// what ParseConfig uses.
type ParseOptions struct {
	// AllowUnknownFields turns unknown fields from errors into warnings
	// (Config.Warnings), as onwards, which ignores them, would load the
	// file. Off by default: a typo such as "concurency_limit" must not
	// silently drop a limit.
	AllowUnknownFields bool
}

// ParseConfig reads an onwards config file and validates it, with the zero
// ParseOptions. See [ParseOptions.Parse].
func ParseConfig(data []byte) (*Config, error) {
	return ParseOptions{}.Parse(data)
}

// Parse reads an onwards config file and validates it. Every problem is
// reported, together and in file order, in one error that joins a
// [*FieldError] for each, as in targets["gpt-4o"].providers[1].url: url
// "ftp://x" has scheme "ftp"; want http or https. Unknown fields are
// errors unless o allows them. What loads but may surprise is listed in
// Config.Warnings. Errors never contain an API key.
func (o ParseOptions) Parse(data []byte) (*Config, error) {
	var top json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fieldErr("config", "not valid JSON: %v", describeJSONError(data, err))
	}
	var shapeErrs, errs []*FieldError
	checkJSON("", top, reflect.TypeFor[Config](), &shapeErrs, checkTargetForm)
	var warns []*FieldError
	for _, e := range shapeErrs {
		if e.unknown && o.AllowUnknownFields {
			warns = append(warns, e)
		} else {
			errs = append(errs, e)
		}
	}
	cfg, ok := decodeConfig(top)
	if ok {
		valErrs, valWarns := validateConfig(cfg)
		errs = append(errs, notUnder(valErrs, shapeErrs)...)
		for _, w := range valWarns {
			warns = append(warns, &FieldError{Place: w.Place, Message: w.Message})
		}
	}
	inFileOrder(data, errs)
	if len(errs) > 0 {
		return nil, joinFieldErrors(errs)
	}
	inFileOrder(data, warns)
	for _, w := range warns {
		cfg.Warnings = append(cfg.Warnings, ConfigWarning{Place: w.Place, Message: w.Message})
	}
	cfg.NotActedOn = cfg.notActedOn()
	return cfg, nil
}

// decodeConfig decodes a config whose shape checkJSON has reported on:
// every top-level field and every target on its own, so that a value of the
// wrong type (reported already) leaves only itself unset and the rest can
// still be validated. It reports false when data is not an object.
func decodeConfig(top json.RawMessage) (*Config, bool) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(top, &fields) != nil {
		return nil, false
	}
	cfg := new(Config)
	for name, raw := range fields {
		if name == "targets" {
			var targets map[string]json.RawMessage
			json.Unmarshal(raw, &targets)
			cfg.Targets = make(map[string]TargetConfig, len(targets))
			for alias, t := range targets {
				var tc TargetConfig
				tc.UnmarshalJSON(t) // a type error leaves its field unset
				cfg.Targets[alias] = tc
			}
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{name: raw})
		json.Unmarshal(one, cfg)
	}
	return cfg, true
}

// notUnder drops the problems at or under a place that already has a
// problem with its JSON shape: a value of the wrong type is reported once,
// not again as missing.
func notUnder(errs, shapeErrs []*FieldError) []*FieldError {
	var out []*FieldError
	for _, e := range errs {
		dup := false
		for _, s := range shapeErrs {
			if !s.unknown && (e.Place == s.Place || strings.HasPrefix(e.Place, s.Place+".") || strings.HasPrefix(e.Place, s.Place+"[")) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// LoadConfig reads and parses the config file at path; see ParseConfig.
func LoadConfig(path string) (*Config, error) {
	return ParseOptions{}.Load(path)
}

// Load reads the config file at path and parses it with o; errors start
// with the path.
func (o ParseOptions) Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	cfg, err := o.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// describeJSONError adds the line and column to a syntax error.
func describeJSONError(data []byte, err error) error {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return err
	}
	before := data[:min(int(syn.Offset), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
